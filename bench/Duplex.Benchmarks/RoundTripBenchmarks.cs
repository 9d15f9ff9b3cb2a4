using System.IO.Pipelines;
using System.Net.WebSockets;
using BenchmarkDotNet.Attributes;
using Duplex.Protocol;

namespace Duplex.Benchmarks;

/// <summary>
/// A whole message round trip (client send, server receive, server echo, client receive) over the
/// same in-memory duplex pipe: Duplex against .NET's ManagedWebSocket
/// (<see cref="WebSocket.CreateFromStream(Stream, bool, string?, TimeSpan)"/>). No sockets, so it
/// measures the WebSocket code alone.
/// </summary>
[MemoryDiagnoser]
public class RoundTripBenchmarks
{
    private WebSocketConnection _duplexClient = null!, _duplexServer = null!;
    private WebSocket _managedClient = null!, _managedServer = null!;
    private byte[] _payload = [];
    private readonly byte[] _buffer = new byte[128 * 1024];

    [Params(32, 16384)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _payload = new byte[Size];
        new Random(1).NextBytes(_payload);
        var (a, b) = PipePair();
        var options = new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero };
        _duplexClient = WebSocketConnection.Create(a, Role.Client, options);
        _duplexServer = WebSocketConnection.Create(b, Role.Server, options);
        var (c, d) = PipePair();
        _managedClient = WebSocket.CreateFromStream(c, isServer: false, subProtocol: null, keepAliveInterval: TimeSpan.Zero);
        _managedServer = WebSocket.CreateFromStream(d, isServer: true, subProtocol: null, keepAliveInterval: TimeSpan.Zero);
    }

    internal static (Stream, Stream) PipePair()
    {
        var up = new Pipe(new PipeOptions(useSynchronizationContext: false));
        var down = new Pipe(new PipeOptions(useSynchronizationContext: false));
        return (new DuplexPipeStream(down.Reader, up.Writer), new DuplexPipeStream(up.Reader, down.Writer));
    }

    [Benchmark(Baseline = true, Description = "ManagedWebSocket round trip")]
    public async Task Managed()
    {
        await _managedClient.SendAsync(_payload, WebSocketMessageType.Binary, true, CancellationToken.None);
        var received = await ReceiveWholeAsync(_managedServer, _buffer);
        await _managedServer.SendAsync(_buffer.AsMemory(0, received), WebSocketMessageType.Binary, true, CancellationToken.None);
        await ReceiveWholeAsync(_managedClient, _buffer);
    }

    /// <summary>Receives a whole ManagedWebSocket message into the buffer; returns its length.</summary>
    internal static async ValueTask<int> ReceiveWholeAsync(WebSocket ws, byte[] _buffer)
    {
        int filled = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            result = await ws.ReceiveAsync(_buffer.AsMemory(filled), CancellationToken.None);
            filled += result.Count;
        }
        while (!result.EndOfMessage);
        return filled;
    }

    [Benchmark(Description = "Duplex round trip")]
    public async Task Duplex()
    {
        await _duplexClient.SendBinaryAsync(_payload);
        var received = await _duplexServer.ReceiveAsync();
        await _duplexServer.SendBinaryAsync(received.Payload);
        await _duplexClient.ReceiveAsync();
    }

    /// <summary>One stream over a pipe pair: reads from one pipe, writes (and flushes) to the other.</summary>
    private sealed class DuplexPipeStream(PipeReader reader, PipeWriter writer) : Stream
    {
        private readonly Stream _in = reader.AsStream(), _out = writer.AsStream();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _in.ReadAsync(buffer, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _out.WriteAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _in.ReadAsync(buffer, offset, count, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _out.WriteAsync(buffer, offset, count, cancellationToken);

        public override Task FlushAsync(CancellationToken cancellationToken) => _out.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => _in.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count) => _out.Write(buffer, offset, count);

        public override void Flush() => _out.Flush();

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

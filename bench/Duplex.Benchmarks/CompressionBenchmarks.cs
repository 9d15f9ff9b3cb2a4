using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;

namespace Duplex.Benchmarks;

/// <summary>
/// permessage-deflate: the codec alone, and a whole compressed round trip over an in-memory pipe,
/// Duplex against ManagedWebSocket with DangerousDeflateOptions (what ASP.NET Core uses).
/// </summary>
[MemoryDiagnoser]
public class CompressionBenchmarks
{
    private byte[] _payload = [];
    private byte[] _compressed = [];
    private Deflater _takeover = null!, _fresh = null!;
    private Inflater _inflater = null!;
    private WebSocketConnection _duplexClient = null!, _duplexServer = null!;
    private WebSocket _managedClient = null!, _managedServer = null!;
    private readonly byte[] _buffer = new byte[256 * 1024];

    [Params("chat JSON (143 B)", "64 KiB text")]
    public string Message { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _payload = Message.StartsWith("chat", StringComparison.Ordinal)
            ? Encoding.UTF8.GetBytes("{\"type\":\"message\",\"channel\":\"lobby\",\"offset\":1042,\"user\":\"ada\",\"time\":\"2026-11-21T07:00:00Z\",\"text\":\"hello everyone, how are you today?\"}")
            : Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 5000).Select(i => $"line {i}: the quick brown fox "))[..65536]);
        _takeover = new Deflater(15, contextTakeover: true);
        _fresh = new Deflater(15, contextTakeover: false);
        _inflater = new Inflater(15, contextTakeover: false);
        var (buffer, length) = _fresh.Compress(_payload);
        _compressed = buffer.AsSpan(0, length).ToArray();

        var options = new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero, Compression = new PerMessageDeflateOptions { Threshold = 0 } };
        var agreed = new DeflateParameters(false, false, 15, 15);
        var (a, b) = RoundTripBenchmarks.PipePair();
        _duplexClient = WebSocketConnection.Create(a, Role.Client, options, compression: agreed);
        _duplexServer = WebSocketConnection.Create(b, Role.Server, options, compression: agreed);
        var (c, d) = RoundTripBenchmarks.PipePair();
        _managedClient = WebSocket.CreateFromStream(c, new WebSocketCreationOptions { DangerousDeflateOptions = new WebSocketDeflateOptions() });
        _managedServer = WebSocket.CreateFromStream(d, new WebSocketCreationOptions { IsServer = true, DangerousDeflateOptions = new WebSocketDeflateOptions() });
    }

    [Benchmark(Description = "compress (context takeover)")]
    public int CompressTakeover()
    {
        var (buffer, length) = _takeover.Compress(_payload);
        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        return length;
    }

    [Benchmark(Description = "compress (no context takeover)")]
    public int CompressFresh()
    {
        var (buffer, length) = _fresh.Compress(_payload);
        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        return length;
    }

    [Benchmark(Description = "decompress")]
    public int Decompress()
    {
        _inflater.Decompress(_compressed, 1 << 20, out var buffer, out int length);
        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        return length;
    }

    [Benchmark(Baseline = true, Description = "ManagedWebSocket compressed round trip")]
    public async Task Managed()
    {
        await _managedClient.SendAsync(_payload, WebSocketMessageType.Text, true, CancellationToken.None);
        int received = await RoundTripBenchmarks.ReceiveWholeAsync(_managedServer, _buffer);
        await _managedServer.SendAsync(_buffer.AsMemory(0, received), WebSocketMessageType.Text, true, CancellationToken.None);
        await RoundTripBenchmarks.ReceiveWholeAsync(_managedClient, _buffer);
    }

    [Benchmark(Description = "Duplex compressed round trip")]
    public async Task Duplex()
    {
        await _duplexClient.SendTextAsync(_payload);
        var received = await _duplexServer.ReceiveAsync();
        await _duplexServer.SendTextAsync(received.Payload);
        await _duplexClient.ReceiveAsync();
    }
}

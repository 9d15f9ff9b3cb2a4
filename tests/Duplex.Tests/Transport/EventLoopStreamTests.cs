using System.Net;
using System.Net.Sockets;
using Duplex.Server;
using Duplex.Testing;
using Duplex.Transport;

namespace Duplex.Tests.Transport;

public class EventLoopStreamTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static async Task<(EventLoopStream Loop, NetworkStream Peer)> PairAsync()
    {
        Assert.True(EventLoop.IsSupported, "the event loop runs on Linux x86-64 only");
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();
        client.Connect(listener.LocalEndPoint!);
        var server = await accept;
        return (EventLoop.Attach(client), new NetworkStream(server, ownsSocket: true));
    }

    [Fact]
    public async Task Reads_what_the_peer_writes_and_sees_the_end()
    {
        var (loop, peer) = await PairAsync();
        await using var _ = loop;
        var buffer = new byte[16];
        var pending = loop.ReadAsync(buffer).AsTask();
        await Task.Delay(50);
        Assert.False(pending.IsCompleted); // nothing sent yet: the read waits for the loop
        await peer.WriteAsync("hello"u8.ToArray());
        Assert.Equal(5, await pending.WaitAsync(Wait));
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);
        peer.Dispose();
        Assert.Equal(0, await loop.ReadAsync(buffer).AsTask().WaitAsync(Wait));
    }

    [Fact]
    public async Task A_large_write_waits_for_the_peer_to_drain_and_arrives_whole()
    {
        var (loop, peer) = await PairAsync();
        await using var _ = loop;
        var data = new byte[32 * 1024 * 1024];
        new Random(5).NextBytes(data);
        var write = loop.WriteAsync(data).AsTask(); // far more than the socket buffers hold
        var received = new MemoryStream();
        var buffer = new byte[1 << 16];
        while (received.Length < data.Length)
        {
            int n = await peer.ReadAsync(buffer).AsTask().WaitAsync(Wait);
            Assert.True(n > 0);
            received.Write(buffer, 0, n);
        }
        await write.WaitAsync(Wait);
        Assert.Equal(data, received.ToArray());
        peer.Dispose();
    }

    [Fact]
    public async Task Cancelling_a_waiting_read_closes_the_stream()
    {
        var (loop, peer) = await PairAsync();
        using var cts = new CancellationTokenSource(100);
        await Assert.ThrowsAnyAsync<Exception>(() => loop.ReadAsync(new byte[8], cts.Token).AsTask().WaitAsync(Wait));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => loop.ReadAsync(new byte[8]).AsTask());
        peer.Dispose();
    }

    [Fact]
    public async Task Server_without_the_event_loop_still_speaks_websocket()
    {
        var options = new WebSocketServerOptions { UseEventLoop = false };
        await using var server = await Loopback.StartEchoServerAsync(options);
        await using var ws = await WebSocketClient.ConnectAsync(server.Url());
        for (int i = 0; i < 100; i++)
        {
            await ws.SendTextAsync($"plain sockets {i}");
            Assert.Equal($"plain sockets {i}", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        }
        var big = new byte[4 << 20];
        await ws.SendBinaryAsync(big);
        Assert.Equal(big.Length, (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).Payload.Length);
    }
}

using System.Text;
using Duplex.Protocol;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Tests.Connection;

public class PreparedMessageTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_broadcast_is_compressed_once_for_every_connection_that_allows_it()
    {
        var connections = new List<WebSocketConnection>();
        var ready = new TaskCompletionSource();
        var options = new WebSocketServerOptions { Compression = PerMessageDeflateOptions.ForServer() };
        await using var server = await Loopback.StartEchoServerAsync(options, s => s.Map("/hub", async (ws, _, _) =>
        {
            lock (connections)
            {
                connections.Add(ws);
                if (connections.Count == 6)
                    ready.TrySetResult();
            }
            await ws.ReceiveAsync();
        }));
        var clients = new List<WebSocketConnection>();
        for (int i = 0; i < 6; i++)
        {
            // Half offer compression, half do not.
            var clientOptions = new WebSocketClientOptions { Compression = i % 2 == 0 ? new PerMessageDeflateOptions() : null };
            clients.Add(await WebSocketClient.ConnectAsync(server.Url("/hub"), clientOptions));
        }
        await ready.Task.WaitAsync(Wait);
        string text = "{\"type\":\"message\",\"text\":\"" + new string('n', 500) + "\"}";
        var message = PreparedMessage.CreateText(text);
        foreach (var connection in connections)
            await connection.SendAsync(message);
        foreach (var client in clients)
            Assert.Equal(text, (await client.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        Assert.Equal(1, message.CompressionCount);
        foreach (var client in clients)
            await client.DisposeAsync();
    }

    [Fact]
    public async Task A_compressed_broadcast_frame_carries_rsv1_and_inflates_to_the_payload()
    {
        var options = new WebSocketServerOptions { Compression = PerMessageDeflateOptions.ForServer() };
        var message = PreparedMessage.CreateText(new string('q', 1000));
        await using var server = await Loopback.StartEchoServerAsync(options, s => s.Map("/hub", async (ws, _, _) =>
        {
            await ws.SendAsync(message);
            await ws.ReceiveAsync();
        }));
        await using var raw = await RawClient.UpgradeAsync(server.LocalEndPoint!, "/hub", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        var frame = await raw.ReadFrameAsync();
        Assert.Equal(FrameHeader.Rsv1, frame!.Rsv);
        using var inflater = new Duplex.Protocol.Deflate.Inflater(15, contextTakeover: false);
        inflater.Decompress(frame.Payload, 1 << 20, out var buffer, out int length);
        Assert.Equal(new string('q', 1000), Encoding.UTF8.GetString(buffer, 0, length));
    }

    [Fact]
    public void Text_must_be_utf8()
    {
        Assert.Throws<ArgumentException>(() => PreparedMessage.Create([0xff], MessageType.Text));
        Assert.Equal(3, PreparedMessage.Create([1, 2, 3], MessageType.Binary).Payload.Length);
    }
}

using System.Text;
using Duplex.Cli;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Tests.Connection;

/// <summary>permessage-deflate between a Duplex client and server, through the handshake.</summary>
public class CompressionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static async Task<(WebSocketServer, WebSocketConnection)> StartAsync(PerMessageDeflateOptions? server, PerMessageDeflateOptions? client,
        long maxMessageSize = 16 << 20)
    {
        var s = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { Compression = server, MaxMessageSize = maxMessageSize });
        var ws = await WebSocketClient.ConnectAsync(s.Url(), new WebSocketClientOptions { Compression = client });
        return (s, ws);
    }

    private static string Chat(int i) => $"{{\"type\":\"message\",\"channel\":\"lobby\",\"offset\":{i},\"text\":\"hello hello hello {i}\"}}";

    [Fact]
    public async Task Negotiated_both_ways_and_messages_echo_intact()
    {
        var (server, ws) = await StartAsync(PerMessageDeflateOptions.ForServer(), new PerMessageDeflateOptions());
        await using var _ = server;
        await using var __ = ws;
        Assert.Equal(new DeflateParameters(true, false, 15, 12), ws.Compression);
        for (int i = 0; i < 50; i++)
        {
            await ws.SendTextAsync(Chat(i));
            Assert.Equal(Chat(i), (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        }
        var big = new byte[1 << 20];
        new Random(9).NextBytes(big.AsSpan(0, 1000)); // mostly zeros: compresses well
        await ws.SendBinaryAsync(big);
        Assert.Equal(big, (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).ToArray());
        await ws.SendTextAsync("tiny"); // under the threshold: sent plain
        Assert.Equal("tiny", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
    }

    [Fact]
    public async Task Not_negotiated_when_either_side_has_it_off()
    {
        var (server, ws) = await StartAsync(null, new PerMessageDeflateOptions());
        await using var _ = server;
        await using var __ = ws;
        Assert.Null(ws.Compression);
        await ws.SendTextAsync(Chat(1));
        Assert.Equal(Chat(1), (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
    }

    [Fact]
    public async Task Frames_on_the_wire_are_compressed_with_rsv1_on_the_first_frame_only()
    {
        var options = new WebSocketServerOptions { Compression = new PerMessageDeflateOptions { Threshold = 0 } };
        await using var server = await Loopback.StartEchoServerAsync(options, s => s.Map("/stream", async (ws, _, _) =>
        {
            await using (var writer = await ws.BeginMessageAsync(MessageType.Text))
            {
                await writer.WriteAsync(Encoding.UTF8.GetBytes(new string('a', 1000)));
                await writer.CompleteAsync(Encoding.UTF8.GetBytes(new string('b', 1000)));
            }
            await ws.SendTextAsync(new string('c', 2000));
            await ws.ReceiveAsync();
        }));
        await using var client = await RawClient.UpgradeAsync(server.LocalEndPoint!, "/stream", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        var first = await client.ReadFrameAsync();
        var second = await client.ReadFrameAsync();
        Assert.Equal(FrameHeader.Rsv1, first!.Rsv);
        Assert.False(first.Fin);
        Assert.Equal(0, second!.Rsv);
        Assert.True(second.Fin);
        var whole = await client.ReadFrameAsync();
        Assert.Equal(FrameHeader.Rsv1, whole!.Rsv);
        Assert.True(whole.Payload.Length < 100);
        using var inflater = new Inflater(15, contextTakeover: true);
        Assert.Equal(InflateStatus.Ok, inflater.Decompress([.. first.Payload, .. second.Payload], 1 << 20, out var text, out int length));
        Assert.Equal(new string('a', 1000) + new string('b', 1000), Encoding.UTF8.GetString(text, 0, length));
        Assert.Equal(InflateStatus.Ok, inflater.Decompress(whole.Payload, 1 << 20, out text, out length));
        Assert.Equal(new string('c', 2000), Encoding.UTF8.GetString(text, 0, length));
    }

    [Fact]
    public async Task A_decompression_bomb_is_closed_with_1009()
    {
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions
        {
            Compression = new PerMessageDeflateOptions(),
            MaxMessageSize = 1 << 20,
        });
        await using var client = await RawClient.UpgradeAsync(server.LocalEndPoint!, "/echo", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        using var deflater = new Deflater(15, contextTakeover: false);
        var (bomb, length) = deflater.Compress(new byte[32 << 20]); // 32 MiB of zeros, about 32 KiB compressed
        await client.SendAsync(Frames.Build(Opcode.Binary, bomb.AsSpan(0, length), rsv: FrameHeader.Rsv1, mask: Frames.TestMask));
        var close = await client.ReadCloseAsync();
        Assert.Equal(1009, close!.CloseCode);
    }

    [Fact]
    public async Task Compressed_text_that_is_not_utf8_is_closed_with_1007()
    {
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { Compression = new PerMessageDeflateOptions() });
        await using var client = await RawClient.UpgradeAsync(server.LocalEndPoint!, "/echo", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        using var deflater = new Deflater(15, contextTakeover: false);
        var (data, length) = deflater.Compress([0xce, 0xba, 0xed, 0xa0, 0x80]);
        await client.SendAsync(Frames.Build(Opcode.Text, data.AsSpan(0, length), rsv: FrameHeader.Rsv1, mask: Frames.TestMask));
        Assert.Equal(1007, (await client.ReadCloseAsync())!.CloseCode);
    }

    [Fact]
    public async Task Rsv1_on_a_continuation_or_control_frame_is_a_protocol_error()
    {
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { Compression = new PerMessageDeflateOptions() });
        await using var client = await RawClient.UpgradeAsync(server.LocalEndPoint!, "/echo", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        await client.SendAsync(Frames.Client(Opcode.Ping, "x"u8, rsv: FrameHeader.Rsv1));
        Assert.Equal(1002, (await client.ReadCloseAsync())!.CloseCode);
    }

    [Fact]
    public async Task A_route_can_turn_compression_off()
    {
        var options = new WebSocketServerOptions { Compression = new PerMessageDeflateOptions() };
        await using var server = await Loopback.StartEchoServerAsync(options, s => s.Map("/plain", Echo.Handler, new WebSocketRouteOptions { NoCompression = true }));
        await using var on = await WebSocketClient.ConnectAsync(server.Url(), new WebSocketClientOptions { Compression = new PerMessageDeflateOptions() });
        await using var off = await WebSocketClient.ConnectAsync(server.Url("/plain"), new WebSocketClientOptions { Compression = new PerMessageDeflateOptions() });
        Assert.NotNull(on.Compression);
        Assert.Null(off.Compression);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task Every_takeover_combination_echoes(bool serverTakeover, bool clientTakeover)
    {
        var server = new PerMessageDeflateOptions { ServerContextTakeover = serverTakeover, ClientContextTakeover = clientTakeover, ServerMaxWindowBits = 10, ClientMaxWindowBits = 9 };
        var (s, ws) = await StartAsync(server, new PerMessageDeflateOptions());
        await using var _ = s;
        await using var __ = ws;
        Assert.Equal(new DeflateParameters(!serverTakeover, !clientTakeover, 10, 9), ws.Compression);
        for (int i = 0; i < 30; i++)
        {
            await ws.SendTextAsync(Chat(i) + new string('z', i * 100));
            Assert.Equal(Chat(i) + new string('z', i * 100), (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        }
    }
}

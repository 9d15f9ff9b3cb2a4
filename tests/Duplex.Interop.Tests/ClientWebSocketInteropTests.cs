using System.Net.WebSockets;
using System.Text;
using Duplex.Cli;
using Duplex.Server;
using Duplex.Testing;


namespace Duplex.Interop.Tests;

/// <summary>.NET's own ClientWebSocket against the Duplex server.</summary>
public class ClientWebSocketInteropTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static async Task<(WebSocketMessageType Type, byte[] Payload)> ReceiveWholeAsync(ClientWebSocket ws)
    {
        var buffer = new byte[64 * 1024];
        using var all = new MemoryStream();
        ValueWebSocketReceiveResult result;
        do
        {
            result = await ws.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
            all.Write(buffer, 0, result.Count);
        }
        while (!result.EndOfMessage);
        return (result.MessageType, all.ToArray());
    }

    private static async Task<WebSocketServer> StartServerAsync()
    {
        return await Loopback.StartEchoServerAsync(configure: s =>
        {
            s.Map("/close4001", (ws, _, _) => ws.CloseAsync((Protocol.CloseStatus)4001, "duplex says bye"));
            s.Map("/fragments", async (ws, _, _) =>
            {
                await using (var writer = await ws.BeginMessageAsync(MessageType.Text))
                {
                    await writer.WriteAsync("in "u8.ToArray());
                    await writer.WriteAsync("three "u8.ToArray());
                    await writer.CompleteAsync("frames"u8.ToArray());
                }
                await ws.ReceiveAsync();
            });
        });
    }

    [Fact]
    public async Task ClientWebSocket_exchanges_text_binary_large_and_fragmented_messages_with_duplex()
    {
        await using var server = await StartServerAsync();
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(server.Url(), CancellationToken.None);

        await ws.SendAsync("hello duplex ✓"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var text = await ReceiveWholeAsync(ws).WaitAsync(Wait);
        Assert.Equal(WebSocketMessageType.Text, text.Type);
        Assert.Equal("hello duplex ✓", Encoding.UTF8.GetString(text.Payload));

        await ws.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var binary = await ReceiveWholeAsync(ws).WaitAsync(Wait);
        Assert.Equal(WebSocketMessageType.Binary, binary.Type);
        Assert.Equal(new byte[] { 1, 2, 3 }, binary.Payload);

        var big = new byte[16 * 1024 * 1024];
        new Random(2).NextBytes(big);
        var send = ws.SendAsync(big, WebSocketMessageType.Binary, true, CancellationToken.None);
        var echoed = await ReceiveWholeAsync(ws).WaitAsync(Wait);
        await send;
        Assert.Equal(big, echoed.Payload);

        // A message in pieces, as ClientWebSocket sends it with endOfMessage: false.
        await ws.SendAsync("piece "u8.ToArray(), WebSocketMessageType.Text, false, CancellationToken.None);
        await ws.SendAsync("by "u8.ToArray(), WebSocketMessageType.Text, false, CancellationToken.None);
        await ws.SendAsync("piece"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("piece by piece", Encoding.UTF8.GetString((await ReceiveWholeAsync(ws).WaitAsync(Wait)).Payload));

        await ws.CloseAsync((WebSocketCloseStatus)4000, "client bye", CancellationToken.None);
        Assert.Equal(System.Net.WebSockets.WebSocketState.Closed, ws.State);
        Assert.Equal(4000, (int)ws.CloseStatus!);
    }

    [Fact]
    public async Task ClientWebSocket_receives_a_message_duplex_sent_in_frames()
    {
        await using var server = await StartServerAsync();
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(server.Url("/fragments"), CancellationToken.None);
        Assert.Equal("in three frames", Encoding.UTF8.GetString((await ReceiveWholeAsync(ws).WaitAsync(Wait)).Payload));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    [Fact]
    public async Task Duplex_initiated_close_code_reaches_ClientWebSocket()
    {
        await using var server = await StartServerAsync();
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(server.Url("/close4001"), CancellationToken.None);
        var result = await ws.ReceiveAsync(new byte[16], CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(4001, (int)result.CloseStatus!);
        Assert.Equal("duplex says bye", result.CloseStatusDescription);
    }

    [Fact]
    public async Task ClientWebSocket_keep_alive_pings_are_answered_by_duplex()
    {
        await using var server = await StartServerAsync();
        using var ws = new ClientWebSocket();
        ws.Options.KeepAliveInterval = TimeSpan.FromMilliseconds(100);
        ws.Options.KeepAliveTimeout = TimeSpan.FromMilliseconds(1500);
        await ws.ConnectAsync(server.Url(), CancellationToken.None);
        var receive = ReceiveWholeAsync(ws);
        await Task.Delay(3000); // twice the timeout: without pongs ClientWebSocket would have aborted
        Assert.Equal(System.Net.WebSockets.WebSocketState.Open, ws.State);
        await ws.SendAsync("still here"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("still here", Encoding.UTF8.GetString((await receive.WaitAsync(Wait)).Payload));
    }

    [Fact]
    public async Task Subprotocol_negotiation_with_ClientWebSocket()
    {
        var route = new WebSocketRouteOptions();
        route.SubProtocols.Add("chat.v2");
        await using var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/chat", Echo.Handler, route));
        using var ws = new ClientWebSocket();
        ws.Options.AddSubProtocol("chat.v1");
        ws.Options.AddSubProtocol("chat.v2");
        await ws.ConnectAsync(server.Url("/chat"), CancellationToken.None);
        Assert.Equal("chat.v2", ws.SubProtocol);
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    [Fact]
    public async Task ClientWebSocket_with_deflate_against_the_duplex_server()
    {
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { Compression = PerMessageDeflateOptions.ForServer() });
        using var ws = new ClientWebSocket();
        ws.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        ws.Options.CollectHttpResponseDetails = true;
        await ws.ConnectAsync(server.Url(), CancellationToken.None);
        Assert.Contains("permessage-deflate", string.Join(",", ws.HttpResponseHeaders!["Sec-WebSocket-Extensions"]));
        for (int i = 0; i < 20; i++)
        {
            var json = Encoding.UTF8.GetBytes($"{{\"n\":{i},\"text\":\"{new string('y', 300)}\"}}");
            await ws.SendAsync(json, WebSocketMessageType.Text, true, CancellationToken.None);
            Assert.Equal(json, (await ReceiveWholeAsync(ws).WaitAsync(Wait)).Payload);
        }
        var big = new byte[4 << 20];
        new Random(4).NextBytes(big.AsSpan(0, 4096));
        var send = ws.SendAsync(big, WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal(big, (await ReceiveWholeAsync(ws).WaitAsync(Wait)).Payload);
        await send;
        await ws.SendAsync("piece "u8.ToArray(), WebSocketMessageType.Text, false, CancellationToken.None);
        await ws.SendAsync(Encoding.UTF8.GetBytes(new string('p', 500)), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("piece " + new string('p', 500), Encoding.UTF8.GetString((await ReceiveWholeAsync(ws).WaitAsync(Wait)).Payload));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }
}

using Duplex.Protocol;

namespace Duplex.Interop.Tests;

/// <summary>The Duplex client against ASP.NET Core's Kestrel WebSocket server.</summary>
public class KestrelInteropTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Duplex_client_exchanges_text_binary_large_and_fragmented_messages_with_kestrel()
    {
        await using var kestrel = await KestrelEchoServer.StartAsync();
        await using var ws = await WebSocketClient.ConnectAsync(kestrel.Url("/echo"));

        await EchoExchange.RunAsync(ws, "kestrel");
    }

    [Fact]
    public async Task Kestrel_answers_duplex_pings()
    {
        await using var kestrel = await KestrelEchoServer.StartAsync();
        await using var ws = await WebSocketClient.ConnectAsync(kestrel.Url("/echo"));
        var pong = new TaskCompletionSource<string>();
        ws.PongReceived = p => pong.TrySetResult(System.Text.Encoding.UTF8.GetString(p.Span));
        var receive = ws.ReceiveAsync().AsTask();
        await ws.PingAsync("ping from duplex"u8.ToArray());
        Assert.Equal("ping from duplex", await pong.Task.WaitAsync(Wait));
        await ws.CloseAsync((CloseStatus)4000, "client bye");
        Assert.Equal(4000, (int)(await receive.WaitAsync(Wait)).CloseStatus);
    }

    [Fact]
    public async Task Kestrel_initiated_close_code_reaches_duplex()
    {
        await using var kestrel = await KestrelEchoServer.StartAsync();
        await using var ws = await WebSocketClient.ConnectAsync(kestrel.Url("/close4001"));
        var closed = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.True(closed.IsClose);
        Assert.Equal(4001, (int)closed.CloseStatus);
        Assert.Equal("kestrel says bye", closed.CloseReason);
        Assert.Equal(ConnectionState.Closed, ws.State);
    }

    [Fact]
    public async Task Duplex_client_reassembles_a_message_kestrel_sends_in_frames()
    {
        await using var kestrel = await KestrelEchoServer.StartAsync();
        await using var ws = await WebSocketClient.ConnectAsync(kestrel.Url("/fragments"));
        Assert.Equal("sent in pieces", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
    }

    [Fact]
    public async Task Duplex_client_answers_kestrel_keep_alive_pings()
    {
        await using var kestrel = await KestrelEchoServer.StartAsync();
        await using var ws = await WebSocketClient.ConnectAsync(kestrel.Url("/keepalive"));
        var receive = ws.ReceiveAsync().AsTask();
        await Task.Delay(3000); // twice Kestrel's timeout: without pongs it would have dropped us
        Assert.Equal(ConnectionState.Open, ws.State);
        await ws.SendTextAsync("still here");
        Assert.Equal("still here", (await receive.WaitAsync(Wait)).GetText());
    }

    [Fact]
    public async Task Duplex_client_and_kestrel_agree_on_permessage_deflate()
    {
        await using var kestrel = await KestrelEchoServer.StartAsync();
        var options = new WebSocketClientOptions { Compression = new PerMessageDeflateOptions() };
        await using var ws = await WebSocketClient.ConnectAsync(kestrel.Url("/compressed"), options);
        Assert.NotNull(ws.Compression);
        await EchoExchange.RunAsync(ws, "kestrel compressed");
        for (int i = 0; i < 20; i++)
        {
            string json = $"{{\"n\":{i},\"text\":\"{new string('x', 200)}\"}}";
            await ws.SendTextAsync(json);
            Assert.Equal(json, (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        }
    }
}

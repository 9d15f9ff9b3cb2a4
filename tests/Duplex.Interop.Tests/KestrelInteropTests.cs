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

        await ws.SendTextAsync("hello kestrel ✓");
        var text = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(MessageType.Text, text.Type);
        Assert.Equal("hello kestrel ✓", text.GetText());

        await ws.SendBinaryAsync(new byte[] { 9, 8, 7 });
        var binary = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(MessageType.Binary, binary.Type);
        Assert.Equal(new byte[] { 9, 8, 7 }, binary.ToArray());

        var big = new byte[16 * 1024 * 1024];
        new Random(1).NextBytes(big);
        await ws.SendBinaryAsync(big);
        Assert.Equal(big, (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).ToArray());

        await using (var writer = await ws.BeginMessageAsync(MessageType.Text))
        {
            await writer.WriteAsync("frag"u8.ToArray());
            await writer.WriteAsync("ment"u8.ToArray());
            await writer.CompleteAsync("ed"u8.ToArray());
        }
        Assert.Equal("fragmented", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
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
        await Task.Delay(1500);
        Assert.Equal(ConnectionState.Open, ws.State);
        await ws.SendTextAsync("still here");
        Assert.Equal("still here", (await receive.WaitAsync(Wait)).GetText());
    }
}

using Duplex.Protocol;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Tests;

/// <summary>Duplex client against Duplex server, through the real handshake, over ws:// and wss://.</summary>
public class EndToEndTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    public static TheoryData<bool> Schemes => new() { false, true };

    private static async Task<(WebSocketServer, WebSocketConnection)> StartAsync(bool tls)
    {
        var options = new WebSocketServerOptions { Certificate = tls ? TestCertificates.Localhost : null };
        var server = await Loopback.StartEchoServerAsync(options);
        var ws = await WebSocketClient.ConnectAsync(server.Url(scheme: tls ? "wss" : "ws"),
            new WebSocketClientOptions { AllowUntrustedCertificate = true });
        return (server, ws);
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public async Task Echoes_text_binary_large_and_fragmented_messages(bool tls)
    {
        var (server, ws) = await StartAsync(tls);
        await using var _ = server;
        await using var __ = ws;

        await ws.SendTextAsync("Hello, wörld 👋");
        var text = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(MessageType.Text, text.Type);
        Assert.Equal("Hello, wörld 👋", text.GetText());

        await ws.SendBinaryAsync(new byte[] { 0, 255, 1 });
        var binary = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(MessageType.Binary, binary.Type);
        Assert.Equal(new byte[] { 0, 255, 1 }, binary.ToArray());

        var big = new byte[16 * 1024 * 1024];
        new Random(16).NextBytes(big);
        await ws.SendBinaryAsync(big);
        Assert.Equal(big, (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).ToArray());

        await using (var writer = await ws.BeginMessageAsync(MessageType.Binary))
        {
            for (int i = 0; i < 10; i++)
                await writer.WriteAsync(big.AsMemory(i * 1000, 1000));
            await writer.CompleteAsync();
        }
        Assert.Equal(big.AsSpan(0, 10_000).ToArray(), (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).ToArray());
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public async Task Ping_is_answered_and_close_is_clean(bool tls)
    {
        var (server, ws) = await StartAsync(tls);
        await using var _ = server;
        var pong = new TaskCompletionSource<string>();
        ws.PongReceived = p => pong.TrySetResult(System.Text.Encoding.UTF8.GetString(p.Span));
        var receive = ws.ReceiveAsync().AsTask();
        await ws.PingAsync("are you there"u8.ToArray());
        Assert.Equal("are you there", await pong.Task.WaitAsync(Wait));
        await ws.CloseAsync(CloseStatus.NormalClosure, "done").WaitAsync(Wait);
        var closed = await receive.WaitAsync(Wait);
        // The reported status is the peer's answer (§7.1.5), which echoes our code without a reason.
        Assert.Equal(CloseStatus.NormalClosure, closed.CloseStatus);
        Assert.Equal("", closed.CloseReason);
        await ws.DisposeAsync();
    }

    [Fact]
    public async Task Message_over_the_servers_limit_closes_with_1009()
    {
        var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { MaxMessageSize = 1000 });
        await using var _ = server;
        await using var ws = await WebSocketClient.ConnectAsync(server.Url());
        await ws.SendBinaryAsync(new byte[1000]);
        Assert.Equal(1000, (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).Payload.Length);
        await ws.SendBinaryAsync(new byte[1001]);
        var closed = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(CloseStatus.MessageTooBig, closed.CloseStatus);
    }

    [Fact]
    public async Task Many_clients_at_once()
    {
        var server = await Loopback.StartEchoServerAsync();
        await using var _ = server;
        var clients = await Task.WhenAll(Enumerable.Range(0, 50).Select(async i =>
        {
            await using var ws = await WebSocketClient.ConnectAsync(server.Url());
            for (int n = 0; n < 20; n++)
            {
                await ws.SendTextAsync($"{i}-{n}");
                Assert.Equal($"{i}-{n}", (await ws.ReceiveAsync()).GetText());
            }
            await ws.CloseAsync();
            return ws.CloseStatus;
        })).WaitAsync(Wait);
        Assert.All(clients, status => Assert.Equal(CloseStatus.NormalClosure, status));
    }
}

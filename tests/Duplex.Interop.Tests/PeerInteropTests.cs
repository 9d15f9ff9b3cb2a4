using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Interop.Tests;

/// <summary>Duplex against Python websockets and Node ws, in both directions.</summary>
public class PeerInteropTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    public static TheoryData<string, bool> Peers => new() { { "python", false }, { "python", true }, { "node", false }, { "node", true } };

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task Peer_client_against_the_duplex_server(string peer, bool compress)
    {
        await using var server = await Loopback.StartEchoServerAsync(new Duplex.Server.WebSocketServerOptions
        {
            Compression = compress ? PerMessageDeflateOptions.ForServer() : null,
        });
        var (exitCode, lines, error) = await Peer.RunClientAsync(peer, server.Url(), compress);
        Assert.True(exitCode == 0, $"{string.Join('\n', lines)}\n{error}");
        Assert.Equal(["ok open", "ok extensions", "ok text", "ok binary", "ok 16MiB", "ok fragmented", "ok ping", "ok close"], lines);
    }

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task Duplex_client_against_the_peer_server(string peer, bool compress)
    {
        await using var server = await Peer.StartServerAsync(peer, compress);
        var options = new WebSocketClientOptions { Compression = compress ? new PerMessageDeflateOptions() : null };

        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/echo"), options))
        {
            Assert.Equal(compress, ws.Compression is not null);
            await EchoExchange.RunAsync(ws, peer);

            var pong = new TaskCompletionSource<string>();
            ws.PongReceived = p => pong.TrySetResult(System.Text.Encoding.UTF8.GetString(p.Span));
            var receive = ws.ReceiveAsync().AsTask();
            await ws.PingAsync("are you there"u8.ToArray());
            Assert.Equal("are you there", await pong.Task.WaitAsync(Wait));

            await ws.CloseAsync((CloseStatus)4000, "bye").WaitAsync(Wait);
            Assert.Equal(4000, (int)(await receive.WaitAsync(Wait)).CloseStatus);
        }

        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/fragments"), options))
            Assert.Equal("sent in pieces", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());

        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/ping"), options))
            Assert.Equal("pong:server ping", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());

        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/close4001"), options))
        {
            var closed = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
            Assert.Equal(4001, (int)closed.CloseStatus);
            Assert.Equal($"{peer} says bye", closed.CloseReason);
        }
    }
}

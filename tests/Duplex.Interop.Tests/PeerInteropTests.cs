using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Interop.Tests;

/// <summary>Duplex against Python websockets and Node ws, in both directions.</summary>
public class PeerInteropTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    public static TheoryData<string> Peers => new() { "python", "node" };

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task Peer_client_against_the_duplex_server(string peer)
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var (exitCode, lines, error) = await Peer.RunClientAsync(peer, server.Url());
        Assert.True(exitCode == 0, $"{string.Join('\n', lines)}\n{error}");
        Assert.Equal(["ok open", "ok text", "ok binary", "ok 16MiB", "ok fragmented", "ok ping", "ok close"], lines);
    }

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task Duplex_client_against_the_peer_server(string peer)
    {
        await using var server = await Peer.StartServerAsync(peer);

        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/echo")))
        {
            await EchoExchange.RunAsync(ws, peer);

            var pong = new TaskCompletionSource<string>();
            ws.PongReceived = p => pong.TrySetResult(System.Text.Encoding.UTF8.GetString(p.Span));
            var receive = ws.ReceiveAsync().AsTask();
            await ws.PingAsync("are you there"u8.ToArray());
            Assert.Equal("are you there", await pong.Task.WaitAsync(Wait));

            await ws.CloseAsync((CloseStatus)4000, "bye").WaitAsync(Wait);
            Assert.Equal(4000, (int)(await receive.WaitAsync(Wait)).CloseStatus);
        }

        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/fragments")))
            Assert.Equal("sent in pieces", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());

        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/ping")))
            Assert.Equal("pong:server ping", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());

        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/close4001")))
        {
            var closed = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
            Assert.Equal(4001, (int)closed.CloseStatus);
            Assert.Equal($"{peer} says bye", closed.CloseReason);
        }
    }
}

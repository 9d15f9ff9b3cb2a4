using System.Net.WebSockets;
using System.Text;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Tests.Connection;

/// <summary>connection.AsWebSocket(): code written for System.Net.WebSockets runs over Duplex unchanged.</summary>
public class WebSocketAdapterTests
{
    // The echo loop of the ASP.NET Core docs, as people copy it: a small buffer, so messages come
    // in pieces and go back in pieces (endOfMessage false until the last).
    private static async Task ClassicEchoAsync(WebSocket webSocket)
    {
        var buffer = new byte[1024];
        var receiveResult = await webSocket.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None);
        while (!receiveResult.CloseStatus.HasValue)
        {
            await webSocket.SendAsync(new ArraySegment<byte>(buffer, 0, receiveResult.Count), receiveResult.MessageType,
                receiveResult.EndOfMessage, CancellationToken.None);
            receiveResult = await webSocket.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None);
        }
        await webSocket.CloseAsync(receiveResult.CloseStatus.Value, receiveResult.CloseStatusDescription, CancellationToken.None);
    }

    [Fact]
    public async Task The_aspnet_docs_echo_loop_runs_over_a_duplex_connection()
    {
        WebSocketState? stateAtEnd = null;
        await using var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/classic", async (connection, _, _) =>
        {
            using var ws = connection.AsWebSocket();
            await ClassicEchoAsync(ws);
            stateAtEnd = ws.State;
        }));
        using var client = new ClientWebSocket();
        await client.ConnectAsync(server.Url("/classic"), CancellationToken.None);
        var random = new Random(5);
        foreach (int size in new[] { 0, 1, 1023, 1024, 1025, 5000, 70_000 })
        {
            byte[] sent = new byte[size];
            random.NextBytes(sent);
            await client.SendAsync(sent, WebSocketMessageType.Binary, true, CancellationToken.None);
            Assert.Equal(sent, await ReceiveWholeAsync(client, WebSocketMessageType.Binary));
        }
        string text = string.Concat(Enumerable.Repeat("añ☃😀", 400)); // characters split across the 1 KiB pieces
        await client.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal(text, Encoding.UTF8.GetString(await ReceiveWholeAsync(client, WebSocketMessageType.Text)));
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus); // Duplex answered the close itself (with the code, no text)
        for (int i = 0; i < 200 && stateAtEnd is null; i++)
            await Task.Delay(10);
        Assert.Equal(WebSocketState.Closed, stateAtEnd);
    }

    private static async Task<byte[]> ReceiveWholeAsync(WebSocket client, WebSocketMessageType expected)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            var result = await client.ReceiveAsync(buffer, CancellationToken.None);
            Assert.Equal(expected, result.MessageType);
            received.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
                return received.ToArray();
        }
    }

    [Fact]
    public async Task Close_output_then_receive_sees_the_peers_close_and_the_states_follow()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        using var ws = pair.Server.AsWebSocket();
        Assert.Equal(WebSocketState.Open, ws.State);
        await ws.SendAsync("hi"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("hi", (await pair.Client.ReceiveAsync()).GetText());
        await ws.CloseOutputAsync(WebSocketCloseStatus.EndpointUnavailable, "leaving", CancellationToken.None);
        Assert.Equal(WebSocketState.CloseSent, ws.State);
        var atClient = await pair.Client.ReceiveAsync(); // the client answers the close
        Assert.Equal(Duplex.Protocol.CloseStatus.GoingAway, atClient.CloseStatus);
        var result = await ws.ReceiveAsync(new byte[16], CancellationToken.None);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, ws.CloseStatus);
        Assert.Equal(WebSocketState.Closed, ws.State);
        await Assert.ThrowsAsync<ArgumentException>(() => ws.SendAsync(new byte[1], WebSocketMessageType.Close, true, CancellationToken.None));
        await Assert.ThrowsAsync<WebSocketException>(() => ws.SendAsync(new byte[1], WebSocketMessageType.Binary, true, CancellationToken.None));
    }

    [Fact]
    public async Task Abort_and_a_lost_peer_look_as_they_do_with_ManagedWebSocket()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        using var ws = pair.Server.AsWebSocket();
        var receiving = ws.ReceiveAsync(new ArraySegment<byte>(new byte[16]), CancellationToken.None);
        pair.Client.Abort(); // the peer vanishes without a close frame
        await Assert.ThrowsAsync<WebSocketException>(() => receiving);
        Assert.Equal(WebSocketState.Aborted, ws.State);
    }
}

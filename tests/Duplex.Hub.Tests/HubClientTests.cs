using System.Collections.Concurrent;
using Duplex.Testing;

namespace Duplex.Hub.Tests;

public class HubClientTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Joins_publishes_with_acks_and_reads_messages()
    {
        var (server, _) = await HubServer.StartAsync();
        await using var _s = server;
        await using var client = await HubClient.ConnectAsync(server.Url("/hub"));
        Assert.NotNull(client.ClientId);
        Assert.Equal(0, await client.JoinAsync("room", new { name = "ada" }));
        Assert.Equal(1, await client.PublishAsync("room", new { text = "hello" }));
        Assert.Equal(2, await client.PublishAsync("room", new { text = "again" }));
        var received = new List<HubChannelMessage>();
        await foreach (var m in client.ReadAllAsync().WithCancellation(new CancellationTokenSource(Wait).Token))
        {
            received.Add(m);
            if (received.Count == 2)
                break;
        }
        Assert.Equal([1L, 2L], received.Select(m => m.Offset));
        Assert.Equal("hello", received[0].Data.GetProperty("text").GetString());
        Assert.Equal(client.ClientId, received[0].From);
        var refused = await Assert.ThrowsAsync<HubException>(() => client.PublishAsync("elsewhere", 1));
        Assert.Equal("not_joined", refused.Code);
    }

    [Fact]
    public async Task After_a_server_restart_new_messages_arrive_and_the_application_is_told_the_old_position_is_gone()
    {
        // The reported loss: the in-memory hub restarts its offsets at 1, and a client that only
        // kept "the last offset" dropped every new message as already seen.
        var hub = new MessageHub();
        var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/hub", hub.HandleAsync, hub.RouteOptions));
        var endPoint = server.LocalEndPoint!;
        await using var client = await HubClient.ConnectAsync(server.Url("/hub"), new HubClientOptions { InitialBackoff = TimeSpan.FromMilliseconds(100) });
        var failures = new ConcurrentQueue<HubRecoveryFailed>();
        client.RecoveryFailed += failures.Enqueue;
        await client.JoinAsync("room");
        for (int i = 1; i <= 5; i++)
            await client.PublishAsync("room", $"before {i}");
        var messages = client.ReadAllAsync(new CancellationTokenSource(Wait).Token).GetAsyncEnumerator();
        for (int i = 1; i <= 5; i++)
            Assert.True(await messages.MoveNextAsync());
        string oldEpoch = messages.Current.Epoch;

        // The server restarts on the same port with a new, empty hub.
        await server.DisposeAsync();
        var restarted = new MessageHub();
        await using var again = new Server.WebSocketServer();
        again.Map("/hub", restarted.HandleAsync, restarted.RouteOptions);
        await again.StartAsync(endPoint);
        var until = DateTime.UtcNow + Wait;
        while (failures.IsEmpty && DateTime.UtcNow < until)
            await Task.Delay(50);
        var failure = Assert.Single(failures);
        Assert.True(failure.StreamReset);
        Assert.Equal(oldEpoch, failure.PreviousEpoch);
        Assert.Equal(5, failure.PreviousOffset);
        Assert.Equal(0, failure.Offset);

        // Offsets start again at 1 in the new epoch: every new message must still arrive.
        for (int i = 1; i <= 3; i++)
            Assert.Equal(i, await client.PublishAsync("room", $"after {i}"));
        for (int i = 1; i <= 3; i++)
        {
            Assert.True(await messages.MoveNextAsync());
            Assert.Equal($"after {i}", messages.Current.Data.GetString());
            Assert.Equal(i, messages.Current.Offset);
            Assert.NotEqual(oldEpoch, messages.Current.Epoch);
        }
        await messages.DisposeAsync();
    }

    [Fact]
    public async Task Reconnects_by_itself_and_recovers_missed_messages_once_each_in_order()
    {
        var hub = new MessageHub();
        var serverSide = new ConcurrentQueue<WebSocketConnection>();
        await using var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/hub", (ws, request, stopping) =>
        {
            serverSide.Enqueue(ws);
            return hub.HandleAsync(ws, request, stopping);
        }, hub.RouteOptions));
        await using var client = await HubClient.ConnectAsync(server.Url("/hub"), new HubClientOptions { InitialBackoff = TimeSpan.FromMilliseconds(100) });
        await client.JoinAsync("news");
        await using var publisher = await HubClient.ConnectAsync(server.Url("/hub"));
        await publisher.JoinAsync("news");
        await publisher.PublishAsync("news", 1);

        var messages = client.ReadAllAsync(new CancellationTokenSource(Wait).Token).GetAsyncEnumerator();
        Assert.True(await messages.MoveNextAsync());
        Assert.Equal(1, messages.Current.Offset);

        // Drop the client's connection from the server side; publish while it is away.
        Assert.True(serverSide.TryDequeue(out var first));
        first.Abort();
        for (int i = 2; i <= 4; i++)
            await publisher.PublishAsync("news", i);

        for (long expected = 2; expected <= 4; expected++)
        {
            Assert.True(await messages.MoveNextAsync());
            Assert.Equal(expected, messages.Current.Offset);
            Assert.Equal(expected, messages.Current.Data.GetInt64());
        }
        Assert.True(client.Reconnects >= 1);
        Assert.Equal(5, await client.PublishAsync("news", 5)); // usable again after reconnecting
        Assert.True(await messages.MoveNextAsync());
        Assert.Equal(5, messages.Current.Offset);
        await messages.DisposeAsync();
    }

    [Fact]
    public async Task Disposing_closes_cleanly_with_1000()
    {
        var log = new ConcurrentQueue<string>();
        var hub = new MessageHub();
        var server = new Duplex.Server.WebSocketServer(new Duplex.Server.WebSocketServerOptions { Log = log.Enqueue });
        server.Map("/hub", hub.HandleAsync, hub.RouteOptions);
        await server.StartAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        await using var _s = server;
        var client = await HubClient.ConnectAsync(server.Url("/hub"));
        await client.JoinAsync("room");
        await client.DisposeAsync();
        string? closed = null;
        for (int i = 0; i < 200 && closed is null; i++)
        {
            closed = log.FirstOrDefault(l => l.StartsWith("close ", StringComparison.Ordinal) && l.Contains("/hub"));
            await Task.Delay(50);
        }
        Assert.NotNull(closed);
        Assert.Contains(" /hub 1000 ", closed);
    }
}

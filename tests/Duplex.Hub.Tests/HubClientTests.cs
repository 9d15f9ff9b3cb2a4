using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
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
        client.PositionLost += failures.Enqueue;
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
        var events = new ConcurrentQueue<string>();
        client.Disconnected += d => events.Enqueue($"disconnected {d.CloseStatus}");
        client.Connected += c => events.Enqueue(c.Reconnected ? "connected again" : "connected");
        client.Recovered += r => events.Enqueue($"recovered {r.Channel} {r.Missed}");
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
        Assert.Contains(events, e => e == "disconnected 1006");
        Assert.Contains(events, e => e == "connected again");
        Assert.Contains(events, e => e == "recovered news 3");
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

    public sealed record Note(string Text, int Stars);

    [Fact]
    public async Task Presence_history_and_typed_data()
    {
        var (server, _) = await HubServer.StartAsync();
        await using var _s = server;
        await using var ada = await HubClient.ConnectAsync(server.Url("/hub"));
        var seen = new ConcurrentQueue<HubPresenceEvent>();
        ada.PresenceChanged += seen.Enqueue;
        await ada.JoinAsync("room", new { name = "ada" });
        await using var bob = await HubClient.ConnectAsync(server.Url("/hub"));
        await bob.JoinAsync("room", new { name = "bob" });

        var members = await ada.PresenceAsync("room");
        Assert.Equal(new[] { "ada", "bob" }, members.Select(m => m.Info!.Value.GetProperty("name").GetString()).Order());
        Assert.Contains(members, m => m.Client == bob.ClientId);
        for (int i = 0; i < 200 && !seen.Any(e => e.Joined && e.Client == bob.ClientId); i++)
            await Task.Delay(25);
        Assert.Equal("bob", Assert.Single(seen, e => e.Joined && e.Client == bob.ClientId).Info!.Value.GetProperty("name").GetString());

        for (int i = 1; i <= 5; i++)
            await bob.PublishAsync("room", new Note($"note {i}", i), TestJson.Default.Note);
        var last = await ada.HistoryAsync("room", limit: 2);
        Assert.Equal([4L, 5L], last.Messages.Select(m => m.Offset));
        Assert.True(last.More);
        Assert.Equal(new Note("note 5", 5), last.Messages[1].GetData(TestJson.Default.Note));
        var earlier = await ada.HistoryAsync("room", limit: 10, before: last.Before);
        Assert.Equal([1L, 2L, 3L], earlier.Messages.Select(m => m.Offset));
        Assert.False(earlier.More);
        Assert.Equal(new Note("note 1", 1), earlier.Messages[0].GetData<Note>());

        await bob.LeaveAsync("room");
        for (int i = 0; i < 200 && !seen.Any(e => !e.Joined && e.Client == bob.ClientId); i++)
            await Task.Delay(25);
        Assert.Contains(seen, e => !e.Joined && e.Client == bob.ClientId);
        Assert.Single(await ada.PresenceAsync("room"));
    }

    [Fact]
    public async Task The_receive_queue_is_bounded_and_a_client_that_reads_late_still_gets_everything_once_in_order()
    {
        var (server, _) = await HubServer.StartAsync(new HubOptions { MaxQueuedMessages = 50, HistorySize = 1000 });
        await using var _s = server;
        await using var reader = await HubClient.ConnectAsync(server.Url("/hub"), new HubClientOptions
        {
            MaxQueuedMessages = 5,
            InitialBackoff = TimeSpan.FromMilliseconds(50),
        });
        await reader.JoinAsync("feed");
        await using var publisher = await HubClient.ConnectAsync(server.Url("/hub"));
        await publisher.JoinAsync("feed");
        string padding = new('x', 16 * 1024); // enough to fill the sockets' buffers, so the hub's bound is reached
        const int count = 400;
        for (int i = 1; i <= count; i++)
            await publisher.PublishAsync("feed", new { i, padding });
        await Task.Delay(300);
        Assert.InRange(reader.QueuedMessages, 1, 5); // the application has read nothing: the queue holds its bound

        var offsets = new List<long>();
        await foreach (var m in reader.ReadAllAsync(new CancellationTokenSource(Wait).Token))
        {
            Assert.Equal(m.Offset, m.Data.GetProperty("i").GetInt64());
            offsets.Add(m.Offset);
            if (offsets.Count == count)
                break;
        }
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), offsets);
    }
}

[JsonSerializable(typeof(HubClientTests.Note))]
internal sealed partial class TestJson : JsonSerializerContext;

using System.Text;
using System.Text.Json;
using Duplex.Hub.Redis;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Hub.Tests;

/// <summary>
/// Hub nodes sharing a real Redis (one server, or a cluster: the subclasses): one order, one
/// history, presence across nodes.
/// </summary>
public abstract class RedisEngineTests : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _owned = [];

    /// <summary>Where the Redis of the test is (a StackExchange.Redis configuration).</summary>
    protected string Configuration { get; private set; } = "";

    /// <summary>Starts the test's Redis; returns its configuration.</summary>
    protected abstract Task<string> StartRedisAsync();

    protected abstract void StopRedis();

    public async Task InitializeAsync() => Configuration = await StartRedisAsync();

    public async Task DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
            await owned.DisposeAsync();
        StopRedis();
    }

    protected async Task<RedisHubEngine> EngineAsync(int historySize = 100, TimeSpan? presenceTtl = null)
    {
        var engine = await RedisHubEngine.ConnectAsync(new RedisHubOptions
        {
            Configuration = Configuration, HistorySize = historySize, PresenceTtl = presenceTtl ?? TimeSpan.FromSeconds(30),
        });
        _owned.Add(engine);
        return engine;
    }

    protected async Task<WebSocketServer> NodeAsync()
    {
        var hub = new MessageHub(new HubOptions(), await EngineAsync());
        var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/hub", hub.HandleAsync, hub.RouteOptions));
        _owned.Add(server);
        return server;
    }

    protected async Task<JsonClient> ClientAsync(WebSocketServer node)
    {
        var client = await JsonClient.ConnectAsync(node);
        _owned.Add(client);
        return client;
    }

    protected static async Task<List<JsonElement>> MessagesAsync(JsonClient client, int count)
    {
        var messages = new List<JsonElement>();
        while (messages.Count < count)
            messages.Add(await client.NextAsync("message"));
        return messages;
    }

    [Fact]
    public async Task Messages_published_on_either_node_reach_members_on_both_in_one_order()
    {
        var (node1, node2) = (await NodeAsync(), await NodeAsync());
        var (a, b) = (await ClientAsync(node1), await ClientAsync(node2));
        var joinA = await a.AskAsync(new { type = "join", channel = "room" });
        var joinB = await b.AskAsync(new { type = "join", channel = "room" });
        Assert.Equal(joinA.GetProperty("epoch").GetString(), joinB.GetProperty("epoch").GetString());

        // Both publish at once, without waiting for acks: 100 each.
        for (int i = 0; i < 100; i++)
        {
            await a.SendAsync(new { type = "publish", channel = "room", data = $"a{i}" });
            await b.SendAsync(new { type = "publish", channel = "room", data = $"b{i}" });
        }
        var gotA = await MessagesAsync(a, 200);
        var gotB = await MessagesAsync(b, 200);

        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), gotA.Select(m => m.GetProperty("offset").GetInt64()));
        Assert.Equal(gotA.Select(m => m.GetProperty("data").GetString()), gotB.Select(m => m.GetProperty("data").GetString()));
        Assert.All(gotA.Concat(gotB), m => Assert.Equal(joinA.GetProperty("epoch").GetString(), m.GetProperty("epoch").GetString()));
        // Each publisher's own messages stay in the order it sent them.
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"a{i}"), gotB.Select(m => m.GetProperty("data").GetString()!).Where(d => d[0] == 'a'));
    }

    [Fact]
    public async Task A_client_recovers_on_another_node_what_was_published_while_it_was_away()
    {
        var (node1, node2) = (await NodeAsync(), await NodeAsync());
        var away = await ClientAsync(node1);
        var publisher = await ClientAsync(node2);
        await publisher.AskAsync(new { type = "join", channel = "news" });
        await publisher.AskAsync(new { type = "publish", channel = "news", data = "before" });
        var joined = await away.AskAsync(new { type = "join", channel = "news" });
        await away.Connection.CloseAsync();

        for (int i = 0; i < 5; i++)
            await publisher.AskAsync(new { type = "publish", channel = "news", data = $"missed{i}" });

        var back = await ClientAsync(node2);
        var answer = await back.AskAsync(new
        {
            type = "join", channel = "news",
            since = joined.GetProperty("offset").GetInt64(), epoch = joined.GetProperty("epoch").GetString(),
        });
        Assert.True(answer.GetProperty("recovered").GetBoolean());
        Assert.Equal(5, answer.GetProperty("missed").GetInt32());
        var missed = await MessagesAsync(back, 5);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"missed{i}"), missed.Select(m => m.GetProperty("data").GetString()));
        Assert.Equal(Enumerable.Range(2, 5).Select(i => (long)i), missed.Select(m => m.GetProperty("offset").GetInt64()));
    }

    [Fact]
    public async Task A_cancelled_call_throws_and_a_publish_cancelled_before_it_is_sent_is_not_stored()
    {
        foreach (IHubEngine engine in new IHubEngine[] { await EngineAsync(historySize: 5), new InMemoryHubEngine(5, TimeSpan.FromMinutes(1)) })
        {
            var first = await engine.PublishAsync("cancel", "one"u8.ToArray(), "me");
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await engine.PublishAsync("cancel", "two"u8.ToArray(), "me", cancelled.Token));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await engine.SinceAsync("cancel", 0, null, cancelled.Token));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await engine.HistoryAsync("cancel", 10, long.MaxValue, cancelled.Token));
            if (engine.Delivers)
            {
                await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await engine.SubscribeAsync("cancel", _ => { }, cancelled.Token));
                await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await engine.PresenceAsync("cancel", cancelled.Token));
            }
            var kept = await engine.HistoryAsync("cancel", 10);
            Assert.Equal([first.Offset], kept.Select(m => m.Offset)); // "two" never reached the store
        }
    }

    [Fact]
    public async Task Since_and_history_answer_as_the_in_memory_engine_does()
    {
        IHubEngine engine = await EngineAsync(historySize: 5);
        HubMessage last = null!;
        for (int i = 1; i <= 8; i++)
            last = await engine.PublishAsync("c", Encoding.UTF8.GetBytes(i.ToString()), "me");
        Assert.Equal(8, last.Offset);

        var recovered = await engine.SinceAsync("c", 3, last.Epoch);
        Assert.Equal([4L, 5, 6, 7, 8], recovered.Missed!.Select(m => m.Offset));
        Assert.Equal("4", Encoding.UTF8.GetString(recovered.Missed![0].Data.Span));
        Assert.Null((await engine.SinceAsync("c", 2, last.Epoch)).Missed);      // older than history
        Assert.Null((await engine.SinceAsync("c", 3, "another")).Missed);       // another stream
        Assert.Empty((await engine.SinceAsync("c", 8, last.Epoch)).Missed!);    // up to date
        Assert.Null((await engine.SinceAsync("c", 9, last.Epoch)).Missed);      // ahead of the stream

        var page = await engine.HistoryAsync("c", 2, before: 8);
        Assert.Equal([6L, 7], page.Select(m => m.Offset));
        Assert.Equal([4L, 5, 6, 7, 8], (await engine.HistoryAsync("c", 100)).Select(m => m.Offset));
        Assert.Empty(await engine.HistoryAsync("nothing", 10));

        // A channel with fewer messages than the history size answers with all of them.
        await engine.PublishAsync("short", "a"u8.ToArray(), "me");
        await engine.PublishAsync("short", "b"u8.ToArray(), "me");
        Assert.Equal([1L, 2], (await engine.HistoryAsync("short", 10)).Select(m => m.Offset));

        var fresh = await engine.SinceAsync("new", long.MaxValue);
        Assert.Equal(0, fresh.Latest);
        Assert.NotEqual(last.Epoch, fresh.Epoch);
    }

    protected static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "waited 10 s in vain");
            await Task.Delay(50);
        }
    }

    protected static string[] Clients(JsonElement presence) =>
        [.. presence.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("client").GetString()!).Order()];

    [Fact]
    public async Task Presence_lists_and_announces_members_of_every_node()
    {
        var (node1, node2) = (await NodeAsync(), await NodeAsync());
        var (a, b, c) = (await ClientAsync(node1), await ClientAsync(node2), await ClientAsync(node2));
        await a.AskAsync(new { type = "join", channel = "room", info = new { name = "ada" } });
        await b.AskAsync(new { type = "join", channel = "room", info = new { name = "bob" } });

        var joined = await a.NextAsync("joined");
        Assert.Equal(b.ClientId, joined.GetProperty("client").GetString());
        Assert.Equal("bob", joined.GetProperty("info").GetProperty("name").GetString());
        var seen = await a.AskAsync(new { type = "presence", channel = "room" });
        Assert.Equal(new[] { a.ClientId, b.ClientId }.Order(), Clients(seen));
        Assert.Contains(seen.GetProperty("members").EnumerateArray(), m => m.GetProperty("info").GetProperty("name").GetString() == "ada");

        await c.AskAsync(new { type = "join", channel = "room" });
        await b.AskAsync(new { type = "leave", channel = "room" });
        Assert.Equal(c.ClientId, (await a.NextAsync("joined")).GetProperty("client").GetString());
        Assert.Equal(b.ClientId, (await a.NextAsync("left")).GetProperty("client").GetString());
        Assert.Equal(new[] { a.ClientId, c.ClientId }.Order(), Clients(await c.AskAsync(new { type = "presence", channel = "room" })));

        await a.Connection.CloseAsync(); // a disconnect is a leave, on every node
        Assert.Equal(a.ClientId, (await c.NextAsync("left")).GetProperty("client").GetString());
        Assert.Equal([c.ClientId], Clients(await c.AskAsync(new { type = "presence", channel = "room" })));
    }

    [Fact]
    public async Task Members_of_a_node_that_died_leave_presence_within_its_ttl_and_are_announced_as_left()
    {
        var ttl = TimeSpan.FromSeconds(1);
        var dying = await RedisHubEngine.ConnectAsync(new RedisHubOptions { Configuration = Configuration, PresenceTtl = ttl });
        IHubEngine alive = await EngineAsync(presenceTtl: ttl);
        var changes = new System.Collections.Concurrent.ConcurrentQueue<HubPresenceChange>();
        await alive.SubscribeAsync("room", new HubSubscriber { Deliver = _ => { }, PresenceChanged = changes.Enqueue });
        await ((IHubEngine)dying).MemberJoinedAsync("room", new HubMember("ghost", null));
        await alive.MemberJoinedAsync("room", new HubMember("here", Encoding.UTF8.GetBytes("{\"n\":1}")));
        await WaitForAsync(() => changes.Any(c => c.Joined && c.Member.Client == "ghost"));
        Assert.Equal(["ghost", "here"], (await alive.PresenceAsync("room")).Select(m => m.Client).Order());

        await dying.DisposeAsync(); // no leave is sent: the node is gone
        await WaitForAsync(() => changes.Any(c => !c.Joined && c.Member.Client == "ghost"));
        var members = await alive.PresenceAsync("room");
        Assert.Equal("here", Assert.Single(members).Client);
        Assert.Equal("{\"n\":1}", Encoding.UTF8.GetString(members[0].Info!));
    }
}

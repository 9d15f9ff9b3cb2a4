using System.Text;
using System.Text.Json;
using Duplex.Hub.Redis;
using Duplex.Server;
using Duplex.Testing;
using StackExchange.Redis;

namespace Duplex.Hub.Tests;

/// <summary>Several hub nodes sharing one real redis-server: one order, one history, no gaps.</summary>
public sealed class RedisHubTests : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _owned = [];
    private RedisProcess _redis = null!;

    public async Task InitializeAsync() => _redis = await RedisProcess.StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
            await owned.DisposeAsync();
        _redis.Dispose();
    }

    private async Task<RedisHubEngine> EngineAsync(int historySize = 100, TimeSpan? presenceTtl = null)
    {
        var engine = await RedisHubEngine.ConnectAsync(new RedisHubOptions
        {
            Configuration = _redis.Address, HistorySize = historySize, PresenceTtl = presenceTtl ?? TimeSpan.FromSeconds(30),
        });
        _owned.Add(engine);
        return engine;
    }

    private async Task<WebSocketServer> NodeAsync()
    {
        var hub = new MessageHub(new HubOptions(), await EngineAsync());
        var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/hub", hub.HandleAsync, hub.RouteOptions));
        _owned.Add(server);
        return server;
    }

    private async Task<JsonClient> ClientAsync(WebSocketServer node)
    {
        var client = await JsonClient.ConnectAsync(node);
        _owned.Add(client);
        return client;
    }

    private static async Task<List<JsonElement>> MessagesAsync(JsonClient client, int count)
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
    public async Task While_Redis_is_down_publishes_are_refused_and_after_it_returns_members_get_what_is_published()
    {
        var (node1, node2) = (await NodeAsync(), await NodeAsync());
        var (a, b) = (await ClientAsync(node1), await ClientAsync(node2));
        var joined = await a.AskAsync(new { type = "join", channel = "room" });
        await b.AskAsync(new { type = "join", channel = "room" });

        _redis.Stop();
        var refused = await a.AskAsync(new { type = "publish", channel = "room", data = "lost" });
        Assert.Equal("error", refused.GetProperty("type").GetString());
        Assert.Equal("unavailable", refused.GetProperty("code").GetString());

        await _redis.StartAgainAsync(); // empty: Redis lost everything
        JsonElement ok;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        do
        {
            await Task.Delay(200);
            ok = await a.AskAsync(new { type = "publish", channel = "room", data = "back" });
        }
        while (ok.GetProperty("type").GetString() == "error" && DateTime.UtcNow < deadline);
        Assert.Equal("ok", ok.GetProperty("type").GetString());
        Assert.NotEqual(joined.GetProperty("epoch").GetString(), ok.GetProperty("epoch").GetString()); // a new stream

        // The other node listens again (re-subscribed) and hands it on, once.
        var got = await b.NextAsync("message");
        Assert.Equal("back", got.GetProperty("data").GetString());
        Assert.Equal(ok.GetProperty("offset").GetInt64(), got.GetProperty("offset").GetInt64());
        // (Not AskAsync: the message may come before the ok, and AskAsync skips it.)
        await b.SendAsync(new { type = "publish", channel = "room", data = "again" });
        Assert.Equal("again", (await b.NextAsync("message")).GetProperty("data").GetString());
    }

    [Fact]
    public async Task A_message_pub_sub_did_not_bring_is_read_back_from_the_stream_before_the_next()
    {
        var node = await NodeAsync();
        var member = await ClientAsync(node);
        await member.AskAsync(new { type = "join", channel = "room" });
        // (SendAsync, not AskAsync: the message may arrive before the ok, and AskAsync skips it.)
        await member.SendAsync(new { type = "publish", channel = "room", data = "one" });
        Assert.Equal("one", (await member.NextAsync("message")).GetProperty("data").GetString());

        // Stored as a publish stores it, but never published (as if pub/sub dropped it).
        await using (var raw = await ConnectionMultiplexer.ConnectAsync(_redis.Address))
        {
            var db = raw.GetDatabase();
            long offset = await db.HashIncrementAsync("duplex:{room}:meta", "top");
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            await db.ExecuteAsync("XADD", "duplex:{room}:stream", $"{offset}-0", "d", "\"two\"", "f", "someone", "t", now.ToString());
        }
        await member.SendAsync(new { type = "publish", channel = "room", data = "three" });

        var got = await MessagesAsync(member, 2);
        Assert.Equal(["two", "three"], got.Select(m => m.GetProperty("data").GetString()));
        Assert.Equal([2L, 3L], got.Select(m => m.GetProperty("offset").GetInt64()));
    }

    [Fact]
    public async Task Members_miss_nothing_when_the_subscription_connection_is_cut_during_a_stream_of_publishes()
    {
        var node = await NodeAsync();
        var member = await ClientAsync(node);
        await member.AskAsync(new { type = "join", channel = "live" });
        IHubEngine publisher = await EngineAsync();

        var publishing = Task.Run(async () =>
        {
            for (int i = 0; i < 300; i++)
            {
                await publisher.PublishAsync("live", Encoding.UTF8.GetBytes(i.ToString()), "pub");
                await Task.Delay(3);
            }
        });
        await Task.Delay(200);
        await using (var admin = await ConnectionMultiplexer.ConnectAsync(_redis.Address + ",allowAdmin=true"))
            await admin.GetDatabase().ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub");
        await publishing;

        var got = await MessagesAsync(member, 300);
        Assert.Equal(Enumerable.Range(1, 300).Select(i => (long)i), got.Select(m => m.GetProperty("offset").GetInt64()));
        Assert.Equal(Enumerable.Range(0, 300), got.Select(m => m.GetProperty("data").GetInt32()));
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

        var fresh = await engine.SinceAsync("new", long.MaxValue);
        Assert.Equal(0, fresh.Latest);
        Assert.NotEqual(last.Epoch, fresh.Epoch);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "waited 10 s in vain");
            await Task.Delay(50);
        }
    }

    private static string[] Clients(JsonElement presence) =>
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
        var dying = await RedisHubEngine.ConnectAsync(new RedisHubOptions { Configuration = _redis.Address, PresenceTtl = ttl });
        IHubEngine alive = await EngineAsync(presenceTtl: ttl);
        var changes = new System.Collections.Concurrent.ConcurrentQueue<HubPresenceChange>();
        await alive.SubscribeAsync("room", _ => { }, changes.Enqueue);
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

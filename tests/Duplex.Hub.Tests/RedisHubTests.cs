using System.Text;
using System.Text.Json;
using Duplex.Hub.Redis;
using Duplex.Testing;
using StackExchange.Redis;

namespace Duplex.Hub.Tests;

/// <summary>Nodes sharing one redis-server, and what only one server lets a test do: stop it, cut its connections, write its keys.</summary>
public sealed class RedisHubTests : RedisEngineTests
{
    private RedisProcess _redis = null!;

    protected override async Task<string> StartRedisAsync()
    {
        _redis = await RedisProcess.StartAsync();
        return _redis.Address;
    }

    protected override void StopRedis() => _redis?.Dispose();

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
    public async Task Only_a_lost_pub_sub_connection_makes_a_node_read_its_channels_back()
    {
        var engine = await EngineAsync();
        await ((IHubEngine)engine).SubscribeAsync("watched", new HubSubscriber { Deliver = _ => { } });
        long CatchUps()
        {
            long count = -1;
            ((IHubEngine)engine).WriteMetrics((name, _, _, value) => { if (name == "duplex_redis_catch_ups_total") count = value; });
            return count;
        }
        long before = CatchUps();
        await using var admin = await ConnectionMultiplexer.ConnectAsync(_redis.Address + ",allowAdmin=true");
        await admin.GetDatabase().ExecuteAsync("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"); // the commands' connection: nothing missed
        await Task.Delay(2500);
        Assert.Equal(before, CatchUps());
        await admin.GetDatabase().ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub");
        for (int i = 0; i < 100 && CatchUps() < before + 2; i++)
            await Task.Delay(50);
        await Task.Delay(2500);
        Assert.Equal(before + 2, CatchUps()); // at once and a second later, once (each restored connection used to start its own pair)
    }

    [Fact]
    public async Task A_node_that_falls_behind_drops_what_waits_and_says_so_and_then_delivers_again()
    {
        var engine = await RedisHubEngine.ConnectAsync(new RedisHubOptions { Configuration = Configuration, MaxPendingMessages = 20 });
        await using var _ = engine;
        IHubEngine publisher = await EngineAsync();
        using var release = new ManualResetEventSlim();
        var delivered = new System.Collections.Concurrent.ConcurrentQueue<long>();
        var behind = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await ((IHubEngine)engine).SubscribeAsync("busy", new HubSubscriber
        {
            Deliver = m =>
            {
                release.Wait(TimeSpan.FromSeconds(20)); // a node too slow for the channel
                delivered.Enqueue(m.Offset);
            },
            FellBehind = channel => behind.TrySetResult(channel),
        });

        for (int i = 0; i < 100; i++)
            await publisher.PublishAsync("busy", Encoding.UTF8.GetBytes(i.ToString()), "fast");
        release.Set();
        Assert.Equal("busy", await behind.Task.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.True(delivered.Count < 100, "nothing was dropped");

        var next = await publisher.PublishAsync("busy", "101"u8.ToArray(), "fast");
        await WaitForAsync(() => delivered.Contains(next.Offset)); // on again from the stream's position
    }
}

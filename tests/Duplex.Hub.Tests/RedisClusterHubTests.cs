using System.Text.Json;
using Duplex.Testing;
using StackExchange.Redis;

namespace Duplex.Hub.Tests;

/// <summary>
/// The same as with one Redis, against a Redis Cluster of three masters: a channel's keys and its
/// sharded pub/sub channel share a hash slot, so each channel lives on one master and channels
/// spread over all of them.
/// </summary>
public sealed class RedisClusterHubTests : RedisEngineTests
{
    private RedisCluster _cluster = null!;

    protected override async Task<string> StartRedisAsync()
    {
        _cluster = await RedisCluster.StartAsync();
        return _cluster.Configuration;
    }

    protected override void StopRedis() => _cluster?.Dispose();

    [Fact]
    public async Task Channels_on_different_masters_each_keep_one_order_across_nodes()
    {
        var (node1, node2) = (await NodeAsync(), await NodeAsync());
        var (a, b) = (await ClientAsync(node1), await ClientAsync(node2));
        string[] channels = [.. Enumerable.Range(0, 8).Select(i => $"room{i}")];
        foreach (var channel in channels)
        {
            await a.AskAsync(new { type = "join", channel });
            await b.AskAsync(new { type = "join", channel });
        }
        for (int i = 0; i < 10; i++)
        {
            foreach (var channel in channels)
                await (i % 2 == 0 ? a : b).SendAsync(new { type = "publish", channel, data = i });
        }

        var gotA = await MessagesAsync(a, channels.Length * 10);
        var gotB = await MessagesAsync(b, channels.Length * 10);
        foreach (var channel in channels)
        {
            var seenA = gotA.Where(m => m.GetProperty("channel").GetString() == channel).Select(m => m.GetProperty("data").GetInt32()).ToList();
            var seenB = gotB.Where(m => m.GetProperty("channel").GetString() == channel).ToList();
            Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), seenB.Select(m => m.GetProperty("offset").GetInt64()));
            Assert.Equal(seenA, seenB.Select(m => m.GetProperty("data").GetInt32()));       // one order for both nodes
            Assert.Equal([0, 2, 4, 6, 8], seenA.Where(d => d % 2 == 0));                      // each publisher's in its order
            Assert.Equal([1, 3, 5, 7, 9], seenA.Where(d => d % 2 == 1));
        }

        // The channels' keys are spread over the masters (hash tags per channel, not one slot for all).
        await using var raw = await ConnectionMultiplexer.ConnectAsync(Configuration);
        int mastersWithKeys = 0;
        foreach (var endpoint in raw.GetEndPoints())
        {
            if (await raw.GetServer(endpoint).DatabaseSizeAsync() > 0)
                mastersWithKeys++;
        }
        Assert.True(mastersWithKeys >= 2, $"all channels landed on {mastersWithKeys} master(s)");
    }
}

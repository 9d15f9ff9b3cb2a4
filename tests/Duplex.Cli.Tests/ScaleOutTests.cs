using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Duplex.Hub;
using Duplex.Testing;
using Xunit.Abstractions;

namespace Duplex.Cli.Tests;

/// <summary>
/// `duplex serve --redis` nodes as separate processes, with a real Redis between them (one
/// redis-server, or a 3-master cluster: the subclasses) and nginx (deploy/nginx.conf) in front,
/// as scripts/cluster.sh runs them. Alone (one collection without parallelization): starting
/// three .NET processes takes both cores for a while, which would starve the timing-sensitive
/// tests running beside it.
/// </summary>
public abstract class ScaleOutTests(ITestOutputHelper output) : IAsyncLifetime
{
    private string _redis = "";
    private readonly List<Node> _nodes = [];
    private NginxProcess _nginx = null!;

    private sealed class Node(Process process, int port)
    {
        public Process Process { get; } = process;
        public int Port { get; } = port;
    }

    /// <summary>Starts the Redis of the test; returns its configuration (HOST:PORT, comma-separated).</summary>
    protected abstract Task<string> StartRedisAsync();

    protected abstract void StopRedis();

    public async Task InitializeAsync()
    {
        _redis = await StartRedisAsync();
        for (int i = 1; i <= 3; i++)
            _nodes.Add(StartNode(i));
        foreach (var node in _nodes)
            await LocalPorts.WaitAsync(node.Port, node.Process);
        _nginx = await NginxProcess.StartAsync([.. _nodes.Select(n => n.Port)]);
    }

    private Node StartNode(int n)
    {
        int port = LocalPorts.Free();
        string cli = Path.Combine(AppContext.BaseDirectory, "Duplex.Cli.dll");
        var process = Background.Start("dotnet", [cli, "serve", "--port", port.ToString(), "--redis", _redis, "--node-id", $"node{n}", "--history-size", "10000", "--quiet"]);
        return new Node(process, port);
    }

    public Task DisposeAsync()
    {
        _nginx?.Dispose();
        foreach (var node in _nodes)
        {
            if (!node.Process.HasExited)
                node.Process.Kill(entireProcessTree: true);
            node.Process.WaitForExit(5_000);
            node.Process.Dispose();
        }
        StopRedis();
        return Task.CompletedTask;
    }

    private static async Task<long> ConnectionsAsync(Node node)
    {
        using var http = new HttpClient();
        string metrics = await http.GetStringAsync($"http://127.0.0.1:{node.Port}/metrics");
        var line = metrics.Split('\n').First(l => l.StartsWith("duplex_hub_connections ", StringComparison.Ordinal));
        return long.Parse(line.Split(' ')[1]);
    }

    [Fact]
    public async Task Through_nginx_clients_spread_over_three_nodes_see_each_others_messages()
    {
        var clients = new List<HubClient>();
        try
        {
            for (int i = 0; i < 6; i++)
            {
                var client = await HubClient.ConnectAsync(_nginx.Url("/hub"));
                clients.Add(client);
                await client.JoinAsync("room");
            }
            // least_conn spread them: every node holds some.
            foreach (var node in _nodes)
                Assert.True(await ConnectionsAsync(node) >= 1, $"node on {node.Port} has no client");

            for (int i = 0; i < clients.Count; i++)
                await clients[i].PublishAsync("room", $"from {i}");

            foreach (var client in clients)
            {
                var got = new List<HubChannelMessage>();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                await foreach (var message in client.ReadAllAsync(timeout.Token))
                {
                    got.Add(message);
                    if (got.Count == clients.Count)
                        break;
                }
                Assert.Equal(Enumerable.Range(0, clients.Count).Select(i => $"from {i}"), got.Select(m => m.Data.GetString()));
                Assert.Equal(Enumerable.Range(1, clients.Count).Select(i => (long)i), got.Select(m => m.Offset));
            }
        }
        finally
        {
            foreach (var client in clients)
                await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task When_a_node_is_killed_its_clients_reconnect_through_nginx_and_every_acknowledged_message_arrives_once_in_order()
    {
        var options = new HubClientOptions { InitialBackoff = TimeSpan.FromMilliseconds(100), MaxBackoff = TimeSpan.FromSeconds(1), RequestTimeout = TimeSpan.FromSeconds(5) };
        var subscribers = new List<HubClient>();
        var publishers = new List<HubClient>();
        try
        {
            for (int i = 0; i < 6; i++)
            {
                var subscriber = await HubClient.ConnectAsync(_nginx.Url("/hub"), options);
                subscribers.Add(subscriber);
                await subscriber.JoinAsync("live");
            }
            for (int i = 0; i < 3; i++)
            {
                var publisher = await HubClient.ConnectAsync(_nginx.Url("/hub"), options);
                publishers.Add(publisher);
                await publisher.JoinAsync("live");
            }

            var received = subscribers.Select(_ => new ConcurrentQueue<HubChannelMessage>()).ToList();
            using var reading = new CancellationTokenSource();
            var readers = subscribers.Select((s, i) => Task.Run(async () =>
            {
                try
                {
                    await foreach (var message in s.ReadAllAsync(reading.Token))
                        received[i].Enqueue(message);
                }
                catch (OperationCanceledException)
                {
                }
            })).ToList();

            // Three publishers publish for 4 s; a node is killed (SIGKILL) after 1.5 s.
            var acknowledged = new ConcurrentDictionary<string, long>();
            long refused = 0;
            var until = DateTime.UtcNow.AddSeconds(4);
            var publishing = publishers.Select((p, i) => Task.Run(async () =>
            {
                for (int seq = 0; DateTime.UtcNow < until; seq++)
                {
                    string data = $"p{i}-{seq}";
                    try
                    {
                        acknowledged[data] = await p.PublishAsync("live", data);
                    }
                    catch (Exception e) when (e is HubException or WebSocketClosedException or TimeoutException or IOException or OperationCanceledException or InvalidOperationException)
                    {
                        Interlocked.Increment(ref refused); // not acknowledged: may or may not have been stored
                        await Task.Delay(50);
                    }
                    await Task.Delay(5);
                }
            })).ToList();
            await Task.Delay(1500);
            var victim = _nodes[0];
            long victimClients = await ConnectionsAsync(victim);
            victim.Process.Kill(entireProcessTree: true);
            await Task.WhenAll(publishing);

            // Every subscriber receives every acknowledged message, once, in offset order.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && received.Any(r => acknowledged.Keys.Except(r.Select(m => m.Data.GetString()!)).Any()))
                await Task.Delay(100);
            await reading.CancelAsync();
            await Task.WhenAll(readers);

            output.WriteLine($"{acknowledged.Count} acknowledged, {refused} refused or lost with the node; killed node held {victimClients} clients; " +
                $"reconnects {string.Join(",", subscribers.Select(s => s.Reconnects))}; received {string.Join(",", received.Select(r => r.Count))}");
            Assert.True(victimClients >= 1, "the killed node held no client: the test proves nothing");
            Assert.True(subscribers.Sum(s => s.Reconnects) >= 1, "no subscriber had to reconnect");
            Assert.True(acknowledged.Count > 100, $"only {acknowledged.Count} publishes were acknowledged");
            foreach (var messages in received)
            {
                var list = messages.ToList();
                var data = list.Select(m => m.Data.GetString()!).ToList();
                Assert.Empty(acknowledged.Keys.Except(data));                       // none lost
                Assert.Equal(data.Count, data.Distinct().Count());                   // none twice
                Assert.Equal(list.Select(m => m.Offset).Order(), list.Select(m => m.Offset)); // in order
                Assert.All(acknowledged, a => Assert.Equal(a.Value, list.First(m => m.Data.GetString() == a.Key).Offset));
            }
        }
        finally
        {
            foreach (var client in subscribers.Concat(publishers))
                await client.DisposeAsync();
        }
    }
}

[Collection(nameof(ScaleOutTests))]
public sealed class ScaleOutWithOneRedisTests(ITestOutputHelper output) : ScaleOutTests(output)
{
    private RedisProcess? _redis;

    protected override async Task<string> StartRedisAsync()
    {
        _redis = await RedisProcess.StartAsync();
        return _redis.Address;
    }

    protected override void StopRedis() => _redis?.Dispose();
}

[Collection(nameof(ScaleOutTests))]
public sealed class ScaleOutWithRedisClusterTests(ITestOutputHelper output) : ScaleOutTests(output)
{
    private RedisCluster? _cluster;

    protected override async Task<string> StartRedisAsync()
    {
        _cluster = await RedisCluster.StartAsync();
        return _cluster.Configuration;
    }

    protected override void StopRedis() => _cluster?.Dispose();
}

[CollectionDefinition(nameof(ScaleOutTests), DisableParallelization = true)]
public sealed class ScaleOutCollection;

using System.Diagnostics;

namespace Duplex.Testing;

/// <summary>
/// A Redis Cluster of three masters (no replicas) made of redis-server processes on 127.0.0.1 and
/// joined with `redis-cli --cluster create`; every process is killed when disposed.
/// </summary>
public sealed class RedisCluster : IDisposable
{
    private readonly List<RedisProcess> _masters = [];

    /// <summary>Every master's HOST:PORT, comma-separated (a StackExchange.Redis configuration).</summary>
    public string Configuration => string.Join(",", _masters.Select(m => m.Address));

    public IReadOnlyList<RedisProcess> Masters => _masters;

    public static async Task<RedisCluster> StartAsync(int masters = 3)
    {
        var cluster = new RedisCluster();
        try
        {
            for (int i = 0; i < masters; i++)
            {
                cluster._masters.Add(await RedisProcess.StartAsync(LocalPorts.FreeWithPartner(10_000),
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"));
            }
            await RunAsync("redis-cli", ["--cluster", "create", .. cluster._masters.Select(m => m.Address), "--cluster-replicas", "0", "--cluster-yes"]);
            foreach (var master in cluster._masters)
            {
                var deadline = DateTime.UtcNow.AddSeconds(20);
                while (!(await RunAsync("redis-cli", ["-p", master.Port.ToString(), "cluster", "info"])).Contains("cluster_state:ok", StringComparison.Ordinal))
                {
                    if (DateTime.UtcNow > deadline)
                        throw new InvalidOperationException($"the cluster node on {master.Port} is not ok after 20 s");
                    await Task.Delay(100);
                }
            }
            return cluster;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    private static async Task<string> RunAsync(string file, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', start.ArgumentList)} failed: {await error}{await output}");
        return await output;
    }

    public void Dispose()
    {
        foreach (var master in _masters)
            master.Dispose();
    }
}

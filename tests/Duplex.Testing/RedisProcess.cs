using System.Diagnostics;

namespace Duplex.Testing;

/// <summary>
/// A redis-server of the test's own (Debian's package, installed by scripts/install-peers.sh):
/// on 127.0.0.1 and a free port, nothing saved, killed when disposed. It can be stopped and
/// started again on the same port (empty again: a Redis that lost its data).
/// </summary>
public sealed class RedisProcess : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duplex-redis-").FullName;
    private Process? _process;

    private readonly string[] _extra;

    private RedisProcess(int port, string[] extra)
    {
        Port = port;
        _extra = extra;
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>Starts one; <paramref name="extra"/> are more redis-server options.</summary>
    public static Task<RedisProcess> StartAsync(params string[] extra) => StartAsync(LocalPorts.Free(), extra);

    public static async Task<RedisProcess> StartAsync(int port, params string[] extra)
    {
        var redis = new RedisProcess(port, extra);
        await redis.StartAgainAsync();
        return redis;
    }

    public async Task StartAgainAsync()
    {
        _process = Background.Start("redis-server",
            new[] { "--bind", "127.0.0.1", "--port", Port.ToString(), "--save", "", "--appendonly", "no", "--dir", _dir }.Concat(_extra),
            _dir, "run scripts/install-peers.sh (or apt-get install redis-server)");
        await LocalPorts.WaitAsync(Port, _process);
    }

    public void Stop()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            process.WaitForExit(5_000);
        }
        _process?.Dispose();
        _process = null;
    }

    public void Dispose()
    {
        Stop();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

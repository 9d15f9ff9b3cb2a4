using System.Net.Sockets;

namespace Duplex.Cli.Bench;

internal sealed record IdleResult(int Opened, int Errors, long? RssBeforeKiB, long? RssAfterKiB)
{
    public double? KiBPerConnection => RssBeforeKiB is long before && RssAfterKiB is long after && Opened > 0
        ? (after - before) / (double)Opened
        : null;
}

/// <summary>Idle load: opens connections, holds them silent, and reads the server's memory growth.</summary>
internal static class IdleLoad
{
    public static async Task<IdleResult> RunAsync(Uri uri, int connections, int? serverPid, TimeSpan settle,
        Action<int>? progress, CancellationToken stop)
    {
        var endPoint = await BenchSocket.ResolveAsync(uri, stop);
        long? before = serverPid is int pid ? ReadRssKiB(pid) : null;
        var sockets = new Stream?[connections];
        int errors = 0, opened = 0;
        try
        {
            // A bounded number of handshakes at a time: a burst of 10,000 SYNs would overflow the backlog.
            using var gate = new SemaphoreSlim(64);
            var tasks = Enumerable.Range(0, connections).Select(async i =>
            {
                await gate.WaitAsync(stop);
                try
                {
                    var (socket, _) = await BenchSocket.ConnectAsync(endPoint, uri, stop);
                    sockets[i] = socket;
                    if (Interlocked.Increment(ref opened) % 1000 == 0)
                        progress?.Invoke(opened);
                }
                catch (Exception e) when (e is SocketException or IOException or WebSocketHandshakeException)
                {
                    Interlocked.Increment(ref errors);
                }
                finally
                {
                    gate.Release();
                }
            });
            await Task.WhenAll(tasks);
            await Task.Delay(settle, stop);
            long? after = serverPid is int p ? ReadRssKiB(p) : null;
            return new IdleResult(opened, errors, before, after);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                if (socket is null)
                    continue;
                BenchSocket.Reset(socket);
            }
        }
    }

    /// <summary>A process's resident memory, from /proc (Linux).</summary>
    public static long? ReadRssKiB(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0]);
            }
        }
        catch (IOException)
        {
        }
        return null;
    }
}

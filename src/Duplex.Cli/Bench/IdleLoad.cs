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
    public static async Task<IdleResult> RunAsync(Uri uri, int connections, int warmup, int? serverPid, TimeSpan settle,
        Action<int>? progress, CancellationToken stop, bool compress = false)
    {
        // With compression, each connection also exchanges one compressed message, so that both
        // ends have made whatever compression state they keep, then goes quiet.
        Func<WebSocketConnection, Task>? hello = compress ? HelloAsync : null;
        if (warmup > 0)
        {
            // Open and close some connections first, so that what the server pays once (code
            // compiled on first use, pools filled) is not counted as the cost of a connection.
            var (warm, _, _) = await BenchClient.OpenAsync(uri, warmup, hello, null, stop, compress);
            await BenchClient.CloseAllAsync(warm);
            await Task.Delay(settle, stop);
        }
        long? before = serverPid is int pid ? ReadRssKiB(pid) : null;
        var (opened, errors, _) = await BenchClient.OpenAsync(uri, connections, hello, progress, stop, compress);
        try
        {
            await Task.Delay(settle, stop);
            long? after = serverPid is int p ? ReadRssKiB(p) : null;
            return new IdleResult(opened.Count(s => s is not null), errors, before, after);
        }
        finally
        {
            await BenchClient.CloseAllAsync(opened);
        }

        async Task HelloAsync(WebSocketConnection ws)
        {
            await ws.SendTextAsync("{\"type\":\"hello\",\"text\":\"" + new string('a', 200) + "\"}", stop);
            if ((await ws.ReceiveAsync(stop)).IsClose)
                throw new IOException("the server closed the connection");
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

    /// <summary>
    /// The CPU time a process has used (user and system), from /proc/PID/stat (Linux; in clock
    /// ticks of 10 ms, which is what the kernel counts in on every common configuration).
    /// </summary>
    public static TimeSpan? ReadCpuTime(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // After the command name in parentheses (which may hold spaces): state is field 3, utime 14, stime 15.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long ticks = long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture)
                + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture);
            return TimeSpan.FromMilliseconds(ticks * 10);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}

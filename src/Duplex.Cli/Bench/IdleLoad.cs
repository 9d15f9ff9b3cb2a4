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
    public static async Task<IdleResult> RunAsync(Uri uri, int connections, int warmup, int? serverPid, TimeSpan settle,
        Action<int>? progress, CancellationToken stop, bool compress = false)
    {
        var endPoint = await BenchSocket.ResolveAsync(uri, stop);
        if (warmup > 0)
        {
            // Open and close some connections first, so that what the server pays once (code
            // compiled on first use, pools filled) is not counted as the cost of a connection.
            var (_, warm) = await OpenAsync(endPoint, uri, warmup, null, stop, compress);
            Close(warm);
            await Task.Delay(settle, stop);
        }
        long? before = serverPid is int pid ? ReadRssKiB(pid) : null;
        var (errors, sockets) = await OpenAsync(endPoint, uri, connections, progress, stop, compress);
        try
        {
            await Task.Delay(settle, stop);
            long? after = serverPid is int p ? ReadRssKiB(p) : null;
            return new IdleResult(sockets.Count(s => s is not null), errors, before, after);
        }
        finally
        {
            Close(sockets);
        }
    }

    private static void Close(Stream?[] sockets)
    {
        foreach (var socket in sockets)
        {
            if (socket is not null)
                BenchSocket.Reset(socket);
        }
    }

    // With compression, each connection also exchanges one compressed message, so that both
    // ends have made whatever compression state they keep, then goes quiet.
    private static readonly Lazy<byte[]> CompressedHello = new(() => BenchSocket.BuildCompressedFrame(
        "{\"type\":\"hello\",\"text\":\"" + new string('a', 200) + "\"}"));

    private static async Task<(int Errors, Stream?[] Sockets)> OpenAsync(System.Net.IPEndPoint endPoint, Uri uri, int connections,
        Action<int>? progress, CancellationToken stop, bool compress = false)
    {
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
                    var (socket, _) = await BenchSocket.ConnectAsync(endPoint, uri, stop, compress);
                    sockets[i] = socket;
                    if (compress)
                    {
                        await socket.WriteAsync(CompressedHello.Value, stop);
                        var counter = new FrameCounter();
                        var scratch = new byte[4096];
                        int messages = 0;
                        while (messages == 0)
                        {
                            int read = await socket.ReadAsync(scratch, stop);
                            if (read == 0)
                                throw new IOException("the server closed the connection");
                            messages = counter.Feed(scratch.AsSpan(0, read), out _);
                        }
                    }
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
            return (errors, sockets);
        }
        catch
        {
            Close(sockets);
            throw;
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

using System.Diagnostics;
using System.Text;

namespace Duplex.Cli.Bench;

internal sealed record FanoutResult(int Subscribers, long Published, long Delivered, double Seconds, long Errors, long Dropped,
    long? RssBeforeKiB, long? RssAfterKiB, Histogram Latency)
{
    public double? KiBPerSubscriber => RssBeforeKiB is long b && RssAfterKiB is long a && Subscribers > 0 ? (a - b) / (double)Subscribers : null;
}

/// <summary>
/// Fan-out through a Duplex hub: many subscribers join one channel, one publisher publishes, and
/// every delivery is counted. The publisher keeps at most a window of messages ahead of the
/// slowest delivery, so that the measure is of delivery, not of dropped slow consumers. Each
/// message's data begins with the time it was sent (Stopwatch ticks, then '|'), so every
/// delivery's latency, publisher to subscriber, is recorded.
/// </summary>
internal static class FanoutLoad
{
    private const string Join = "{\"type\":\"join\",\"channel\":\"fanout\",\"id\":\"join\"}";

    public static async Task<FanoutResult> RunAsync(Uri uri, int subscribers, int size, TimeSpan duration, int? serverPid,
        Action<double, long>? progress, CancellationToken stop, Uri? publishUri = null)
    {
        string padding = new('x', Math.Max(0, size - 21)); // the time stamp and '|' take up to 21 of the size
        byte[] Publish() => Encoding.UTF8.GetBytes($"{{\"type\":\"publish\",\"channel\":\"fanout\",\"data\":\"{Stopwatch.GetTimestamp()}|{padding}\"}}");
        var latencies = new List<Histogram>();
        long? before = serverPid is int p0 ? IdleLoad.ReadRssKiB(p0) : null;
        long delivered = 0, errors = 0, dropped = 0;
        long lastArrival = Stopwatch.GetTimestamp(); // of anything to any subscriber: the joins' presence events settle first
        bool measuring = false;
        var readers = new List<Task>();
        // Counted down by the readers as their join is answered: waited for without blocking a thread.
        int toJoin = subscribers;
        var joinedAll = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Joined()
        {
            if (Interlocked.Decrement(ref toJoin) == 0)
                joinedAll.TrySetResult();
        }
        var (connections, connectErrors, _) = await BenchClient.OpenAsync(uri, subscribers, async ws =>
        {
            await ws.SendTextAsync(Join, stop);
            lock (readers)
                readers.Add(ReadAsync(ws));
        }, null, stop);
        errors += connectErrors;
        for (int i = 0; i < connectErrors; i++)
            Joined();

        // Counts the channel's messages only (not the welcome, the join's answer or presence events).
        async Task ReadAsync(WebSocketConnection ws)
        {
            bool joined = false;
            var latency = new Histogram();
            lock (latencies)
                latencies.Add(latency);
            try
            {
                while (true)
                {
                    var message = await ws.ReceiveAsync(stop);
                    if (message.IsClose)
                    {
                        if (Volatile.Read(ref measuring))
                            Interlocked.Increment(ref dropped); // the server closed it (1013: too slow)
                        break;
                    }
                    Volatile.Write(ref lastArrival, Stopwatch.GetTimestamp());
                    var payload = message.Payload.Span;
                    if (!joined)
                    {
                        if (payload.IndexOf("\"id\":\"join\""u8) >= 0)
                        {
                            joined = true;
                            Joined();
                        }
                        continue;
                    }
                    if (payload.StartsWith("{\"type\":\"message\""u8) && Volatile.Read(ref measuring))
                    {
                        Interlocked.Increment(ref delivered);
                        if (SentAt(payload) is long sent)
                            latency.Record((long)((Stopwatch.GetTimestamp() - sent) * (1e9 / Stopwatch.Frequency)));
                    }
                }
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
            {
            }
            finally
            {
                if (!joined)
                {
                    Interlocked.Increment(ref errors); // gone before it had joined
                    Joined();
                }
            }
        }

        // Every subscriber has its join answered, or the joins have had time to land.
        await Task.WhenAny(joinedAll.Task, Task.Delay(TimeSpan.FromSeconds(5 + subscribers / 2000.0), stop));
        // A join is announced to every member (channels up to 1,000): publishing starts once those
        // events have stopped arriving, so what is measured is the publishes' fan-out.
        for (var quiet = Stopwatch.StartNew(); quiet.Elapsed < TimeSpan.FromSeconds(30)
             && Stopwatch.GetElapsedTime(Volatile.Read(ref lastArrival)) < TimeSpan.FromMilliseconds(500);)
            await Task.Delay(100, stop);
        await Task.Delay(500, stop);
        long? after = serverPid is int p1 ? IdleLoad.ReadRssKiB(p1) : null;
        int live = connections.Count(s => s is not null);

        // Another node's URL measures delivery between nodes (through the engine they share).
        var publisher = await BenchClient.ConnectAsync(publishUri ?? uri, stop);
        await publisher.SendTextAsync(Join, stop);
        await Task.Delay(200, stop);
        Volatile.Write(ref measuring, true);
        var clock = Stopwatch.StartNew();
        long published = 0;
        const int window = 32;
        long nextReport = 1000;
        long lastProgress = 0, stalledSince = 0;
        while (clock.Elapsed < duration && !stop.IsCancellationRequested)
        {
            // Stay at most `window` messages ahead of what the subscribers have received, unless
            // deliveries stall (a subscriber that is gone would otherwise hold everything up).
            long now = Interlocked.Read(ref delivered);
            if (now < (published - window) * live)
            {
                if (now != lastProgress)
                {
                    lastProgress = now;
                    stalledSince = clock.ElapsedMilliseconds;
                }
                if (clock.ElapsedMilliseconds - stalledSince < 1000)
                {
                    await Task.Delay(1, stop); // leave the core to the subscribers' reads
                    continue;
                }
            }
            await publisher.SendTextAsync(Publish(), stop);
            published++;
            if (progress is not null && clock.ElapsedMilliseconds >= nextReport)
            {
                progress(clock.Elapsed.TotalSeconds, Interlocked.Read(ref delivered));
                nextReport += 1000;
            }
        }
        double seconds = clock.Elapsed.TotalSeconds;
        long total = Interlocked.Read(ref delivered);
        Volatile.Write(ref measuring, false);
        // The publisher's answers are never read: drop it rather than wait for its close to drain them.
        await BenchClient.CloseAsync(publisher);
        await BenchClient.CloseAllAsync(connections);
        Task[] pending;
        lock (readers)
            pending = [.. readers];
        await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        var all = new Histogram();
        lock (latencies)
        {
            foreach (var one in latencies)
                all.Add(one);
        }
        return new FanoutResult(live, published, total, seconds, Interlocked.Read(ref errors), Interlocked.Read(ref dropped), before, after, all);
    }

    // The send time at the start of a message event's data: "data":"<ticks>|…
    private static long? SentAt(ReadOnlySpan<byte> payload)
    {
        int at = payload.IndexOf("\"data\":\""u8);
        if (at < 0)
            return null;
        var rest = payload[(at + 8)..];
        int bar = rest.IndexOf((byte)'|');
        return bar > 0 && System.Buffers.Text.Utf8Parser.TryParse(rest[..bar], out long ticks, out int used) && used == bar ? ticks : null;
    }
}

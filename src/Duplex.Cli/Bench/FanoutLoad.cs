using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Duplex.Protocol;

namespace Duplex.Cli.Bench;

internal sealed record FanoutResult(int Subscribers, long Published, long Delivered, double Seconds, long Errors,
    long? RssBeforeKiB, long? RssAfterKiB)
{
    public double? KiBPerSubscriber => RssBeforeKiB is long b && RssAfterKiB is long a && Subscribers > 0 ? (a - b) / (double)Subscribers : null;
}

/// <summary>
/// Fan-out through a Duplex hub: many subscribers join one channel, one publisher publishes, and
/// every delivery is counted. The publisher keeps at most a window of messages ahead of the
/// slowest delivery, so that the measure is of delivery, not of dropped slow consumers.
/// </summary>
internal static class FanoutLoad
{
    public static async Task<FanoutResult> RunAsync(Uri uri, int subscribers, int size, TimeSpan duration, int? serverPid,
        Action<double, long>? progress, CancellationToken stop)
    {
        var endPoint = await BenchSocket.ResolveAsync(uri, stop);
        byte[] join = Masked("{\"type\":\"join\",\"channel\":\"fanout\"}");
        string data = new('x', Math.Max(0, size));
        byte[] publish = Masked($"{{\"type\":\"publish\",\"channel\":\"fanout\",\"data\":\"{data}\"}}");
        long? before = serverPid is int p0 ? IdleLoad.ReadRssKiB(p0) : null;
        long delivered = 0, errors = 0;
        bool measuring = false;
        var streams = new Stream?[subscribers];
        using var gate = new SemaphoreSlim(64);
        var readers = new List<Task>();
        // Counted down by the readers, which run on the event loop: wait for it without blocking a thread.
        int toJoin = subscribers;
        var joinedAll = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Joined()
        {
            if (Interlocked.Decrement(ref toJoin) == 0)
                joinedAll.TrySetResult();
        }
        var opening = Enumerable.Range(0, subscribers).Select(async i =>
        {
            await gate.WaitAsync(stop);
            try
            {
                var (stream, _) = await BenchSocket.ConnectAsync(endPoint, uri, stop);
                streams[i] = stream;
                await stream.WriteAsync(join, stop);
                lock (readers)
                    readers.Add(ReadAsync(stream));
            }
            catch (Exception e) when (e is SocketException or IOException or WebSocketHandshakeException)
            {
                Interlocked.Increment(ref errors);
                Joined();
            }
            finally
            {
                gate.Release();
            }
        });
        await Task.WhenAll(opening);

        async Task ReadAsync(Stream stream)
        {
            var counter = new FrameCounter();
            var buffer = new byte[64 * 1024];
            int seen = 0;
            try
            {
                while (true)
                {
                    int read = await stream.ReadAsync(buffer, stop);
                    if (read == 0)
                        break;
                    int messages = counter.Feed(buffer.AsSpan(0, read), out bool closed);
                    if (seen < 2 && seen + messages >= 2)
                        Joined(); // welcome, then the join's answer
                    seen += messages;
                    if (Volatile.Read(ref measuring))
                        Interlocked.Add(ref delivered, messages);
                    if (closed)
                    {
                        Interlocked.Increment(ref errors);
                        break;
                    }
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidDataException)
            {
            }
            finally
            {
                if (seen < 2)
                {
                    Interlocked.Increment(ref errors); // gone before it had joined
                    Joined();
                }
            }
        }

        // Every subscriber has its welcome and join answer, or the joins have had time to land.
        await Task.WhenAny(joinedAll.Task, Task.Delay(TimeSpan.FromSeconds(5 + subscribers / 2000.0), stop));
        await Task.Delay(1000, stop);
        long? after = serverPid is int p1 ? IdleLoad.ReadRssKiB(p1) : null;
        int live = streams.Count(s => s is not null);

        var (publisher, _) = await BenchSocket.ConnectAsync(endPoint, uri, stop);
        await publisher.WriteAsync(join, stop);
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
                if (clock.ElapsedMilliseconds - stalledSince < 200)
                {
                    await Task.Delay(1, stop); // leave the core to the subscribers' reads
                    continue;
                }
            }
            await publisher.WriteAsync(publish, stop);
            published++;
            if (progress is not null && clock.ElapsedMilliseconds >= nextReport)
            {
                progress(clock.Elapsed.TotalSeconds, Interlocked.Read(ref delivered));
                nextReport += 1000;
            }
        }
        double seconds = clock.Elapsed.TotalSeconds;
        long total = Interlocked.Read(ref delivered);
        BenchSocket.Reset(publisher);
        foreach (var stream in streams)
        {
            if (stream is not null)
                BenchSocket.Reset(stream);
        }
        return new FanoutResult(live, published, total, seconds, Interlocked.Read(ref errors), before, after);
    }

    private static byte[] Masked(string json)
    {
        var payload = Encoding.UTF8.GetBytes(json);
        var frame = new byte[FrameWriter.GetFrameLength(payload.Length, masked: true)];
        FrameWriter.WriteFrame(frame, Opcode.Text, true, 0, payload, 0x1A2B3C4Du);
        return frame;
    }
}

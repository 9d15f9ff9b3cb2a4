using System.Diagnostics;

namespace Duplex.Cli.Bench;

internal sealed record EchoSettings(Uri Uri, int Connections, int InFlight, int Size, bool Text, TimeSpan Duration, TimeSpan Warmup);

/// <summary>Totals of an echo run (the measured window only).</summary>
internal sealed class EchoResult
{
    public long Messages;
    public long Errors;
    public double Seconds;
    public Histogram Latency { get; } = new();
}

/// <summary>
/// Echo load: each connection keeps a fixed number of messages in flight. When k echoes come
/// back in one read, k new frames go out in one write, from a block of frames built and masked
/// once (<see cref="RawConnection"/>). Latency is the time from a frame's write to its echo
/// (echoes come back in order).
/// </summary>
internal static class EchoLoad
{
    public static async Task<EchoResult> RunAsync(EchoSettings settings, Action<double, long>? progress, CancellationToken stop)
    {
        var frame = RawConnection.BuildFrame(settings.Text, settings.Size);
        var block = new byte[frame.Length * settings.InFlight];
        for (int i = 0; i < settings.InFlight; i++)
            frame.CopyTo(block, i * frame.Length);
        Exception? firstError = null;
        var opened = await Task.WhenAll(Enumerable.Range(0, settings.Connections).Select(async _ =>
        {
            try
            {
                return await RawConnection.OpenAsync(settings.Uri, stop);
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is System.Security.Authentication.AuthenticationException)
            {
                Interlocked.CompareExchange(ref firstError, e, null);
                return null;
            }
        }));
        long connectErrors = opened.Count(o => o is null);
        if (connectErrors == settings.Connections)
            throw BenchClient.NoConnection(settings.Uri, firstError);

        long measureFrom = Stopwatch.GetTimestamp() + (long)(settings.Warmup.TotalSeconds * Stopwatch.Frequency);
        long measureTo = measureFrom + (long)(settings.Duration.TotalSeconds * Stopwatch.Frequency);
        var workers = opened.Where(c => c is not null)
            .Select(c => new Worker(c!, frame.Length, block, settings.InFlight, measureFrom, measureTo)).ToArray();
        var all = Task.WhenAll(workers.Select(w => w.RunAsync(stop)));
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(1000, stop)).ContinueWith(_ => { }, TaskScheduler.Default);
            if (progress is not null && !all.IsCompleted)
            {
                long now = Stopwatch.GetTimestamp();
                long count = workers.Sum(w => Volatile.Read(ref w.Measured));
                double measuredSeconds = (Math.Min(now, measureTo) - measureFrom) / (double)Stopwatch.Frequency; // < 0: warming up
                progress(measuredSeconds, count);
            }
        }
        var result = new EchoResult { Errors = connectErrors, Seconds = settings.Duration.TotalSeconds };
        foreach (var w in workers)
        {
            result.Messages += w.Measured;
            result.Errors += w.Errors;
            result.Latency.Add(w.Latency);
        }
        return result;
    }

    private sealed class Worker(RawConnection connection, int frameLength, byte[] block, int inFlight, long measureFrom, long measureTo)
    {
        private readonly long[] _sentAt = new long[inFlight];
        private int _head, _tail;
        private FrameCounter _counter;
        public long Measured;
        public long Errors;
        public Histogram Latency { get; } = new();

        public async Task RunAsync(CancellationToken stop)
        {
            var stream = connection.Stream;
            var buffer = GC.AllocateUninitializedArray<byte>(Math.Max(64 * 1024, frameLength * inFlight + 64));
            try
            {
                await SendAsync(inFlight, stop);
                int completed = _counter.Feed(connection.Leftover, out _);
                while (true)
                {
                    if (completed > 0 && !await OnEchoesAsync(completed, stop))
                        break;
                    int read = await stream.ReadAsync(buffer, stop);
                    if (read == 0)
                    {
                        Errors++;
                        break;
                    }
                    completed = _counter.Feed(buffer.AsSpan(0, read), out bool closed);
                    if (closed)
                    {
                        Errors++;
                        break;
                    }
                }
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
            {
                if (e is not OperationCanceledException)
                    Errors++;
            }
            finally
            {
                await connection.DisposeAsync(); // a clean close: 1000, then the server's FIN
            }
        }

        // Records the echoes' latency and refills the window; false once the run is over.
        private async ValueTask<bool> OnEchoesAsync(int count, CancellationToken stop)
        {
            long now = Stopwatch.GetTimestamp();
            for (int i = 0; i < count; i++)
            {
                long sent = _sentAt[_head];
                _head = (_head + 1) % _sentAt.Length;
                if (sent >= measureFrom && now <= measureTo)
                {
                    Measured++;
                    Latency.Record((long)((now - sent) * (1e9 / Stopwatch.Frequency)));
                }
            }
            if (now > measureTo)
                return false;
            await SendAsync(count, stop);
            return true;
        }

        private async ValueTask SendAsync(int count, CancellationToken stop)
        {
            long now = Stopwatch.GetTimestamp();
            for (int i = 0; i < count; i++)
            {
                _sentAt[_tail] = now;
                _tail = (_tail + 1) % _sentAt.Length;
            }
            await connection.Stream.WriteAsync(block.AsMemory(0, count * frameLength), stop);
        }
    }
}

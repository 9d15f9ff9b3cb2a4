using System.Diagnostics;

namespace Duplex.Cli.Bench;

internal sealed record HandshakeResult(long Completed, long Errors, double Seconds, Histogram Latency);

/// <summary>Handshake load: workers that connect, upgrade, close cleanly (close frame both ways), and start over.</summary>
internal static class HandshakeLoad
{
    public static async Task<HandshakeResult> RunAsync(Uri uri, int parallel, TimeSpan duration, TimeSpan warmup,
        Action<double, long>? progress, CancellationToken stop)
    {
        long measureFrom = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        long measureTo = measureFrom + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        long completed = 0, errors = 0, succeeded = 0;
        Exception? firstError = null;
        var histograms = new Histogram[parallel];
        var workers = Enumerable.Range(0, parallel).Select(w => Task.Run(async () =>
        {
            var latency = histograms[w] = new Histogram();
            while (Stopwatch.GetTimestamp() < measureTo && !stop.IsCancellationRequested)
            {
                long started = Stopwatch.GetTimestamp();
                try
                {
                    // Upgrade, then close cleanly: close 1000, the server's close frame and its FIN.
                    await (await RawConnection.OpenAsync(uri, stop)).DisposeAsync();
                    long ended = Stopwatch.GetTimestamp();
                    Interlocked.Increment(ref succeeded);
                    if (started >= measureFrom && ended <= measureTo)
                    {
                        Interlocked.Increment(ref completed);
                        latency.Record((long)((ended - started) * (1e9 / Stopwatch.Frequency)));
                    }
                }
                catch (Exception e) when (BenchClient.IsFailure(e) || e is System.Security.Authentication.AuthenticationException)
                {
                    Interlocked.Increment(ref errors);
                    Interlocked.CompareExchange(ref firstError, e, null);
                }
            }
        }, stop)).ToArray();
        var all = Task.WhenAll(workers);
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(1000, stop)).ContinueWith(_ => { }, TaskScheduler.Default);
            long now = Stopwatch.GetTimestamp();
            progress?.Invoke((Math.Min(now, measureTo) - measureFrom) / (double)Stopwatch.Frequency, Interlocked.Read(ref completed)); // < 0: warming up
        }
        if (succeeded == 0 && firstError is not null)
            throw BenchClient.NoConnection(uri, firstError); // every attempt failed: say why (a 404 gives its status)
        var merged = new Histogram();
        foreach (var h in histograms)
            merged.Add(h);
        return new HandshakeResult(completed, errors, duration.TotalSeconds, merged);
    }
}

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
/// Echo load: each connection keeps a fixed number of messages in flight and sends a new one for
/// each echo. Latency is the time from a message's send to its echo (echoes come back in order).
/// </summary>
internal static class EchoLoad
{
    public static async Task<EchoResult> RunAsync(EchoSettings settings, Action<double, long>? progress, CancellationToken stop)
    {
        var payload = new byte[settings.Size];
        for (int i = 0; i < payload.Length; i++)
            payload[i] = (byte)('a' + i % 26); // valid UTF-8 for text
        var (connections, connectErrors, first) = await BenchClient.OpenAsync(settings.Uri, settings.Connections, null, null, stop);
        if (connectErrors == settings.Connections)
            throw BenchClient.NoConnection(settings.Uri, first);

        long measureFrom = Stopwatch.GetTimestamp() + (long)(settings.Warmup.TotalSeconds * Stopwatch.Frequency);
        long measureTo = measureFrom + (long)(settings.Duration.TotalSeconds * Stopwatch.Frequency);
        var workers = connections.Where(c => c is not null)
            .Select(c => new Worker(c!, payload, settings.Text, settings.InFlight, measureFrom, measureTo)).ToArray();
        var all = Task.WhenAll(workers.Select(w => w.RunAsync(stop)));
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(1000, stop)).ContinueWith(_ => { }, TaskScheduler.Default);
            if (progress is not null && !all.IsCompleted)
            {
                long now = Stopwatch.GetTimestamp();
                long count = workers.Sum(w => Volatile.Read(ref w.Measured));
                double measuredSeconds = Math.Max(0, (Math.Min(now, measureTo) - measureFrom) / (double)Stopwatch.Frequency);
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

    private sealed class Worker(WebSocketConnection ws, byte[] payload, bool text, int inFlight, long measureFrom, long measureTo)
    {
        private readonly long[] _sentAt = new long[inFlight];
        private int _head, _tail;
        public long Measured;
        public long Errors;
        public Histogram Latency { get; } = new();

        public async Task RunAsync(CancellationToken stop)
        {
            try
            {
                for (int i = 0; i < inFlight; i++)
                    await SendAsync(stop);
                while (true)
                {
                    var echo = await ws.ReceiveAsync(stop);
                    if (echo.IsClose)
                    {
                        Errors++;
                        return;
                    }
                    long now = Stopwatch.GetTimestamp();
                    long sent = _sentAt[_head];
                    _head = (_head + 1) % _sentAt.Length;
                    if (sent >= measureFrom && now <= measureTo)
                    {
                        Measured++;
                        Latency.Record((long)((now - sent) * (1e9 / Stopwatch.Frequency)));
                    }
                    if (now > measureTo)
                        break;
                    await SendAsync(stop);
                }
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
            {
                if (e is not OperationCanceledException)
                    Errors++;
            }
            finally
            {
                await BenchClient.CloseAsync(ws); // the echoes still in flight are drained by the close
            }
        }

        private ValueTask SendAsync(CancellationToken stop)
        {
            _sentAt[_tail] = Stopwatch.GetTimestamp();
            _tail = (_tail + 1) % _sentAt.Length;
            return text ? ws.SendTextAsync(payload, stop) : ws.SendBinaryAsync(payload, stop);
        }
    }
}

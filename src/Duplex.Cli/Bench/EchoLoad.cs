using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Duplex.Protocol;

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
/// once. Latency is the time from a frame's write to its echo (echoes come back in order).
/// </summary>
internal static class EchoLoad
{
    public static async Task<EchoResult> RunAsync(EchoSettings settings, Action<double, long>? progress, CancellationToken stop)
    {
        var endPoint = await BenchSocket.ResolveAsync(settings.Uri, stop);
        var frame = BenchSocket.BuildFrame(settings.Text ? Opcode.Text : Opcode.Binary, settings.Size);
        var block = new byte[frame.Length * settings.InFlight];
        for (int i = 0; i < settings.InFlight; i++)
            frame.CopyTo(block, i * frame.Length);

        var connections = new Worker[settings.Connections];
        var opened = await Task.WhenAll(Enumerable.Range(0, settings.Connections).Select(async i =>
        {
            try
            {
                return await BenchSocket.ConnectAsync(endPoint, settings.Uri, stop);
            }
            catch (Exception e) when (e is SocketException or IOException or WebSocketHandshakeException)
            {
                return ((Stream, byte[])?)null;
            }
        }));
        long connectErrors = opened.Count(o => o is null);
        if (connectErrors == settings.Connections)
            throw new IOException($"no connection to {settings.Uri} could be opened");

        long measureFrom = Stopwatch.GetTimestamp() + (long)(settings.Warmup.TotalSeconds * Stopwatch.Frequency);
        long measureTo = measureFrom + (long)(settings.Duration.TotalSeconds * Stopwatch.Frequency);
        var tasks = new List<Task>();
        for (int i = 0; i < opened.Length; i++)
        {
            if (opened[i] is not var (stream, leftover))
                continue;
            connections[i] = new Worker(stream, frame.Length, block, settings.InFlight, measureFrom, measureTo);
            tasks.Add(connections[i].RunAsync(leftover, stop));
        }
        var all = Task.WhenAll(tasks);
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(1000, stop)).ContinueWith(_ => { }, TaskScheduler.Default);
            if (progress is not null && !all.IsCompleted)
            {
                long now = Stopwatch.GetTimestamp();
                long count = 0;
                foreach (var c in connections)
                {
                    if (c is null)
                        continue;
                    count += Volatile.Read(ref c.Measured);
                }
                double measuredSeconds = Math.Max(0, (Math.Min(now, measureTo) - measureFrom) / (double)Stopwatch.Frequency);
                progress(measuredSeconds, count);
            }
        }
        var result = new EchoResult { Errors = connectErrors, Seconds = settings.Duration.TotalSeconds };
        foreach (var c in connections)
        {
            if (c is null)
                continue;
            result.Messages += c.Measured;
            result.Errors += c.Errors;
            result.Latency.Add(c.Latency);
        }
        return result;
    }

    private sealed class Worker(Stream stream, int frameLength, byte[] block, int inFlight, long measureFrom, long measureTo)
    {
        private readonly long[] _sentAt = new long[inFlight];
        private int _head, _tail, _outstanding;
        private FrameCounter _counter = new();
        public long Measured;
        public long Errors;
        public Histogram Latency { get; } = new();

        public async Task RunAsync(byte[] leftover, CancellationToken stop)
        {
            var buffer = GC.AllocateUninitializedArray<byte>(Math.Max(64 * 1024, frameLength * inFlight + 64));
            try
            {
                await SendAsync(inFlight, stop);
                int completed = _counter.Feed(leftover, out _);
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
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or InvalidDataException)
            {
                if (e is not OperationCanceledException)
                    Errors++;
            }
            finally
            {
                BenchSocket.Reset(stream);
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
                _outstanding--;
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
                _outstanding++;
            }
            await stream.WriteAsync(block.AsMemory(0, count * frameLength), stop);
        }
    }
}

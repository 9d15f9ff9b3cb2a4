using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Duplex.Protocol;

namespace Duplex.Cli.Bench;

internal sealed record SoakSettings(Uri Root, int Connections, TimeSpan Duration, TimeSpan Sample, TimeSpan Warmup);

/// <summary>What the server's /metrics said at one moment.</summary>
internal sealed record SoakSample(double Seconds, long Connections, long HubConnections, long RssBytes, long HeapBytes, long Fds, long HistoryBytes);

internal sealed record SoakResult(
    List<SoakSample> Samples, SoakSample Baseline, SoakSample? After,
    long Echoes, long Corrupted, long Deliveries, long Gaps, long Dropped, long Churned, long Connects, long ConnectErrors,
    double RssSlopeMiBPerMinute, double HeapSlopeMiBPerMinute, string? Growth, string? NotReturned)
{
    /// <summary>Nothing corrupted or lost, memory flat after warm-up, every counter back to its baseline.</summary>
    public bool Passed => Corrupted == 0 && Gaps == 0 && Growth is null && NotReturned is null && Echoes > 0 && Deliveries > 0;
}

/// <summary>
/// A soak of a Duplex server (`duplex serve`: /echo, /hub, /metrics): many connections with mixed
/// traffic for a long time, while the server's memory, descriptors and managed heap are sampled
/// from /metrics. The mix: half idle (half of those offer permessage-deflate), a fifth echo
/// clients checking every byte that comes back (half compressed), a quarter hub subscribers that
/// check each channel's offsets for gaps, a twentieth slow readers (taking a message every 20 s:
/// the server must drop them with 1013 rather than buffer for them), ten publishers, and churn:
/// every second 0.5% of the connections are dropped without a close and replaced.
/// </summary>
internal static class SoakLoad
{
    private const int Channels = 10;
    private enum Kind { Idle, IdleCompressed, Echo, EchoCompressed, Subscriber, SlowReader }

    private static Kind KindOf(int slot) => (slot % 20) switch
    {
        < 10 => slot % 2 == 0 ? Kind.Idle : Kind.IdleCompressed,
        < 14 => slot % 2 == 0 ? Kind.Echo : Kind.EchoCompressed,
        < 19 => Kind.Subscriber,
        _ => Kind.SlowReader,
    };

    public static async Task<SoakResult> RunAsync(SoakSettings settings, Action<SoakSample>? progress, CancellationToken stop)
    {
        using var http = MetricsClient();
        var metricsUri = new UriBuilder(settings.Root) { Scheme = settings.Root.Scheme == "wss" ? "https" : "http", Path = "/metrics" }.Uri;
        var clock = Stopwatch.StartNew();
        var baseline = await SampleAsync(http, metricsUri, clock, stop)
            ?? throw new IOException($"no metrics at {metricsUri}: is it a Duplex server (duplex serve)?");
        var counters = new Counters();
        var slots = new WebSocketConnection?[settings.Connections];
        using var end = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var samples = new List<SoakSample>();

        var tasks = new List<Task>();
        using (var gate = new SemaphoreSlim(64)) // at most 64 handshakes at a time, as a fleet reconnecting would
        {
            for (int slot = 0; slot < settings.Connections; slot++)
                tasks.Add(RunSlotAsync(settings.Root, slot, slots, gate, counters, end.Token));
            for (int channel = 0; channel < Channels; channel++)
                tasks.Add(PublishAsync(settings.Root, channel, counters, end.Token));
            tasks.Add(ChurnAsync(slots, counters, end.Token));
            try
            {
                while (clock.Elapsed < settings.Duration + TimeSpan.FromSeconds(1))
                {
                    await Task.Delay(settings.Sample, stop);
                    if (await SampleAsync(http, metricsUri, clock, stop) is { } sample)
                    {
                        samples.Add(sample);
                        progress?.Invoke(sample);
                    }
                    if (clock.Elapsed >= settings.Duration)
                        break;
                }
            }
            finally
            {
                end.Cancel(); // every slot closes its connection with 1000 and stops
                await Task.WhenAll(tasks);
            }
        }

        // The clients are gone: every counter must come back to where it was before they came.
        SoakSample? after = null;
        string? notReturned = "no metrics after the run";
        var until = clock.Elapsed + TimeSpan.FromSeconds(30);
        while (clock.Elapsed < until && !stop.IsCancellationRequested)
        {
            after = await SampleAsync(http, metricsUri, clock, stop);
            notReturned = after is null ? "no metrics after the run" : NotReturned(baseline, after);
            if (notReturned is null)
                break;
            await Task.Delay(1000, stop);
        }

        var steady = samples.Where(s => s.Seconds >= settings.Warmup.TotalSeconds).ToList();
        return new SoakResult(samples, baseline, after,
            counters.Echoes, counters.Corrupted, counters.Deliveries, counters.Gaps, counters.Dropped, counters.Churned,
            counters.Connects, counters.ConnectErrors,
            Slope(steady, s => s.RssBytes), Slope(steady, s => s.HeapBytes), Growth(steady), notReturned);
    }

    private sealed class Counters
    {
        public long Echoes, Corrupted, Deliveries, Gaps, Dropped, Churned, Connects, ConnectErrors;
    }

    // One client slot: connects as its kind, runs until dropped (churn, 1013, a failure), reconnects; until the end.
    private static async Task RunSlotAsync(Uri root, int slot, WebSocketConnection?[] slots, SemaphoreSlim gate, Counters counters, CancellationToken end)
    {
        var kind = KindOf(slot);
        var random = new Random(slot);
        bool compressed = kind is Kind.IdleCompressed or Kind.EchoCompressed;
        var uri = new Uri(root, kind is Kind.Subscriber or Kind.SlowReader ? "/hub" : "/echo");
        while (!end.IsCancellationRequested)
        {
            WebSocketConnection ws;
            try
            {
                await gate.WaitAsync(end);
                try
                {
                    ws = await BenchClient.ConnectAsync(uri, end, compressed);
                }
                finally
                {
                    gate.Release();
                }
                Interlocked.Increment(ref counters.Connects);
            }
            catch (OperationCanceledException) when (end.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
            {
                Interlocked.Increment(ref counters.ConnectErrors);
                await Waits.PauseAsync(TimeSpan.FromSeconds(1), end);
                continue;
            }
            Volatile.Write(ref slots[slot], ws);
            try
            {
                await (kind switch
                {
                    Kind.Echo or Kind.EchoCompressed => EchoAsync(ws, random, counters, end),
                    Kind.Subscriber => SubscribeAsync(ws, slot % Channels, slow: false, counters, end),
                    Kind.SlowReader => SubscribeAsync(ws, slot % Channels, slow: true, counters, end),
                    _ => IdleAsync(ws, end),
                });
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
            {
                // dropped (churn, a 1013, the end): reconnect unless it is the end
            }
            finally
            {
                Volatile.Write(ref slots[slot], null);
                if (end.IsCancellationRequested && ws.CloseStatus is null)
                    await CloseWithin(ws, TimeSpan.FromSeconds(5));
                await ws.DisposeAsync();
            }
            await Waits.PauseAsync(TimeSpan.FromMilliseconds(random.Next(100, 1000)), end);
        }
    }

    private static async Task IdleAsync(WebSocketConnection ws, CancellationToken end)
    {
        while (!(await ws.ReceiveAsync(end)).IsClose)
        {
        }
    }

    // Every 1-3 s a message of 1 B - 8 KiB, random bytes (text or binary); what comes back must be identical.
    private static async Task EchoAsync(WebSocketConnection ws, Random random, Counters counters, CancellationToken end)
    {
        while (true)
        {
            await Task.Delay(random.Next(1000, 3000), end);
            bool text = random.Next(2) == 0;
            var payload = new byte[random.Next(1, 8192)];
            if (text)
            {
                for (int i = 0; i < payload.Length; i++)
                    payload[i] = (byte)random.Next(0x20, 0x7F);
                await ws.SendTextAsync(Encoding.ASCII.GetString(payload), end);
            }
            else
            {
                random.NextBytes(payload);
                await ws.SendBinaryAsync(payload, end);
            }
            var back = await ws.ReceiveAsync(end);
            if (back.IsClose)
                return;
            Interlocked.Increment(ref counters.Echoes);
            if (back.Type != (text ? MessageType.Text : MessageType.Binary) || !back.Payload.Span.SequenceEqual(payload))
                Interlocked.Increment(ref counters.Corrupted);
        }
    }

    // Joins a channel and reads it; within one connection the offsets must follow each other.
    private static async Task SubscribeAsync(WebSocketConnection ws, int channel, bool slow, Counters counters, CancellationToken end)
    {
        await ws.SendTextAsync($"{{\"type\":\"join\",\"channel\":\"soak-{channel}\"}}", end);
        long last = -1;
        while (true)
        {
            var message = await ws.ReceiveAsync(end);
            if (message.IsClose)
            {
                if (message.CloseStatus == CloseStatus.TryAgainLater)
                    Interlocked.Increment(ref counters.Dropped);
                return;
            }
            if (!message.Payload.Span.StartsWith("{\"type\":\"message\""u8))
                continue;
            Interlocked.Increment(ref counters.Deliveries);
            using (var json = JsonDocument.Parse(message.Payload))
            {
                long offset = json.RootElement.GetProperty("offset").GetInt64();
                if (last >= 0 && offset != last + 1)
                    Interlocked.Increment(ref counters.Gaps);
                last = offset;
            }
            if (slow)
                await Task.Delay(TimeSpan.FromSeconds(20), end);
        }
    }

    // One publisher per channel (a member, as the hub asks): 5 messages of 512 B a second, each acknowledged before the next.
    private static async Task PublishAsync(Uri root, int channel, Counters counters, CancellationToken end)
    {
        var data = new string('p', 512);
        while (!end.IsCancellationRequested)
        {
            WebSocketConnection ws;
            try
            {
                ws = await BenchClient.ConnectAsync(new Uri(root, "/hub"), end);
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
            {
                Interlocked.Increment(ref counters.ConnectErrors);
                await Waits.PauseAsync(TimeSpan.FromSeconds(1), end);
                continue;
            }
            try
            {
                await ws.SendTextAsync($"{{\"type\":\"join\",\"channel\":\"soak-{channel}\"}}", end); // publishers are members
                for (long n = 0; ; n++)
                {
                    await ws.SendTextAsync($"{{\"type\":\"publish\",\"channel\":\"soak-{channel}\",\"id\":{n},\"data\":\"{data}\"}}", end);
                    while (true)
                    {
                        var answer = await ws.ReceiveAsync(end);
                        if (answer.IsClose)
                            return;
                        if (answer.Payload.Span.IndexOf(Encoding.ASCII.GetBytes($"\"id\":{n},")) >= 0)
                            break;
                    }
                    await Task.Delay(200, end);
                }
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
            {
            }
            finally
            {
                if (end.IsCancellationRequested && ws.CloseStatus is null)
                    await CloseWithin(ws, TimeSpan.FromSeconds(5));
                await ws.DisposeAsync();
            }
        }
    }

    // Every second, 0.5% of the connections go away without a close frame (as a phone losing its network would).
    private static async Task ChurnAsync(WebSocketConnection?[] slots, Counters counters, CancellationToken end)
    {
        var random = new Random(1);
        int perSecond = Math.Max(1, slots.Length / 200);
        while (await Waits.PauseAsync(TimeSpan.FromSeconds(1), end))
        {
            for (int i = 0; i < perSecond; i++)
            {
                if (Volatile.Read(ref slots[random.Next(slots.Length)]) is { } victim)
                {
                    victim.Abort();
                    Interlocked.Increment(ref counters.Churned);
                }
            }
        }
    }

    private static async Task CloseWithin(WebSocketConnection ws, TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await ws.CloseAsync(CloseStatus.NormalClosure, "soak done", timeout.Token);
        }
        catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
        {
        }
    }

    private static HttpClient MetricsClient()
    {
        var handler = new SocketsHttpHandler();
        if (BenchClient.AcceptAnyCertificate)
            handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
    }

    private static async Task<SoakSample?> SampleAsync(HttpClient http, Uri metrics, Stopwatch clock, CancellationToken stop)
    {
        string text;
        try
        {
            text = await http.GetStringAsync(metrics, stop);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !stop.IsCancellationRequested)
        {
            return null;
        }
        var values = new Dictionary<string, long>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
                continue;
            var parts = line.Split(' ');
            if (parts.Length == 2 && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out long value))
                values[parts[0]] = value;
        }
        long Get(string name) => values.TryGetValue(name, out long v) ? v : -1;
        if (Get("duplex_connections") < 0)
            return null;
        return new SoakSample(clock.Elapsed.TotalSeconds, Get("duplex_connections"), Get("duplex_hub_connections"),
            Get("process_resident_memory_bytes"), Get("dotnet_gc_heap_bytes"), Get("process_open_fds"), Get("duplex_hub_history_bytes"));
    }

    // Connections must be back to the baseline exactly; descriptors within a few (the runtime opens some lazily).
    private static string? NotReturned(SoakSample baseline, SoakSample after)
    {
        if (after.Connections != baseline.Connections)
            return $"connections {after.Connections} (baseline {baseline.Connections})";
        if (after.HubConnections != baseline.HubConnections)
            return $"hub connections {after.HubConnections} (baseline {baseline.HubConnections})";
        if (baseline.Fds >= 0 && after.Fds > baseline.Fds + 16)
            return $"open descriptors {after.Fds} (baseline {baseline.Fds})";
        return null;
    }

    /// <summary>Least-squares slope of a series against time, in MiB per minute.</summary>
    public static double Slope(IReadOnlyList<SoakSample> samples, Func<SoakSample, long> value)
    {
        if (samples.Count < 2)
            return 0;
        double meanT = samples.Average(s => s.Seconds), meanV = samples.Average(s => (double)value(s));
        double num = samples.Sum(s => (s.Seconds - meanT) * (value(s) - meanV));
        double den = samples.Sum(s => (s.Seconds - meanT) * (s.Seconds - meanT));
        return den == 0 ? 0 : num / den * 60 / (1 << 20);
    }

    /// <summary>
    /// Flat means: the median of the last third of the steady samples is within 15% (and at least
    /// 32 MiB) of the first third's, for RSS and for the managed heap. Null when flat.
    /// </summary>
    public static string? Growth(IReadOnlyList<SoakSample> steady)
    {
        if (steady.Count < 3)
            return null; // too short to judge: reported as such by the caller
        int third = steady.Count / 3;
        foreach (var (name, value) in new (string, Func<SoakSample, long>)[] { ("RSS", s => s.RssBytes), ("GC heap", s => s.HeapBytes) })
        {
            double first = Median(steady.Take(third).Select(value)), last = Median(steady.Skip(steady.Count - third).Select(value));
            double allowed = Math.Max(first * 0.15, 32 << 20);
            if (last - first > allowed)
                return $"{name} grew from {first / (1 << 20):0} MiB to {last / (1 << 20):0} MiB after warm-up";
        }
        return null;
    }

    private static double Median(IEnumerable<long> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];
    }
}

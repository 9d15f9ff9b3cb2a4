using System.Globalization;
using System.Text.Json;

namespace Duplex.Cli.Bench;

/// <summary>`duplex bench`: load for any WebSocket server, with a live progress line and a final table or JSON.</summary>
internal static class BenchCommand
{
    public const string Help = """
        usage: duplex bench <echo|idle|handshake|fanout|soak> <ws://host:port/path | wss://…> [options]

        A load generator for any WebSocket server. echo and handshake write frames built and
        masked once, in batches, so the generator itself stays cheap; every connection ends with
        a clean close (1000).

          echo       connections keep messages in flight against an echo endpoint
                     --connections N (100)  --in-flight N (16)  --size BYTES (32)  --text
                     --duration SECONDS (10)  --warmup SECONDS (3)
          idle       open connections, hold them silent, report the server's memory per connection
                     --connections N (10000)  --pid PID (the server's, to read its RSS)  --settle SECONDS (3)
                     --warmup-connections N (500: opened and closed first, so one-time costs
                     such as compiling code are not counted per connection)
                     --compress (offer permessage-deflate and exchange one compressed message each)
          fanout     a Duplex hub (ws://…/hub): subscribers join one channel, one publisher publishes
                     and every subscriber checks its messages (none lost, skipped or repeated)
                     --subscribers N (10000)  --size BYTES (100)  --duration SECONDS (10)
                     --pid PID (the server's: its RSS per subscriber, its CPU per delivery)
                     --channel NAME (a new one per run)  --window N (32: messages the publisher
                     may be ahead of the slowest subscriber)
                     --publish-to URL (publish on another node of a scale-out: delivery through Redis)
          handshake  workers connect, upgrade and close cleanly, over and over
                     --parallel N (4)  --duration SECONDS (5)  --warmup SECONDS (1)
          soak       a Duplex server (ws://host:port: its /echo, /hub and /metrics) under mixed
                     traffic: idle, compressed, echo checking every byte, hub subscribers checking
                     offsets, slow readers, publishers, abrupt disconnects. Samples RSS, descriptors
                     and GC heap; fails if anything was corrupted or lost, memory grew after the
                     warm-up, or a counter did not return to its baseline once the clients left
                     --connections N (10000)  --duration SECONDS (1800)  --sample SECONDS (10)
                     --warmup SECONDS (a quarter of the duration, at most 300)

        common: --json (print the result as JSON)  --quiet (no progress line)
                --insecure (wss:// with any certificate: self-signed test servers)
        """;

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken stop)
    {
        if (args.Length == 0 || args.Contains("--help") || args.Contains("-h"))
        {
            if (args.Length == 0)
                throw new UsageException("bench needs a mode: echo, idle, handshake, fanout or soak");
            await console.Out.WriteLineAsync(Help);
            return 0;
        }
        string mode = args[0];
        var a = Arguments.Parse(args[1..],
            ["connections", "in-flight", "size", "duration", "warmup", "pid", "settle", "parallel", "warmup-connections", "subscribers", "sample", "publish-to"], ["text", "json", "quiet", "compress", "insecure"]);
        if (mode is not ("echo" or "idle" or "handshake" or "fanout" or "soak"))
            throw new UsageException($"unknown bench mode '{mode}' (echo, idle, handshake, fanout or soak)");
        if (a.Positional.Count != 1)
            throw new UsageException(a.Positional.Count == 0 ? "bench needs the server's URL, like ws://127.0.0.1:8080/echo" : $"unexpected argument '{a.Positional[1]}'");
        var uri = ParseUrl(a.Positional[0], null);
        bool json = a.Flag("json");
        BenchClient.AcceptAnyCertificate = a.Flag("insecure");
        var progress = a.Flag("quiet") ? null : console.Error;
        ResourceLimits.RaiseOpenFileLimit();
        return mode switch
        {
            "echo" => await EchoAsync(uri, a, json, progress, console, stop),
            "idle" => await IdleAsync(uri, a, json, progress, console, stop),
            "fanout" => await FanoutAsync(uri, a, json, progress, console, stop),
            "soak" => await SoakAsync(uri, a, json, progress, console, stop),
            _ => await HandshakeAsync(uri, a, json, progress, console, stop),
        };
    }

    private static async Task<int> EchoAsync(Uri uri, Arguments a, bool json, TextWriter? progress, CliConsole console, CancellationToken stop)
    {
        var settings = new EchoSettings(uri,
            a.Int("connections", 100, 1, 20_000), a.Int("in-flight", 16, 1, 4096), a.Int("size", 32, 0, 64 << 20), a.Flag("text"),
            TimeSpan.FromSeconds(a.Seconds("duration", 10, 0.1, 86_400)), TimeSpan.FromSeconds(a.Seconds("warmup", 3, 0, 3600)));
        var result = await EchoLoad.RunAsync(settings, progress is null ? null : (seconds, count) =>
            progress.Write(ProgressLine(seconds, count, "msg/s")), stop);
        progress?.WriteLine();
        double rate = result.Messages / result.Seconds;
        double megabytes = rate * settings.Size / 1e6;
        if (json)
        {
            await WriteJsonAsync(console, w =>
            {
                w.WriteString("mode", "echo");
                w.WriteString("url", uri.ToString());
                w.WriteNumber("connections", settings.Connections);
                w.WriteNumber("inFlight", settings.InFlight);
                w.WriteNumber("size", settings.Size);
                w.WriteString("type", settings.Text ? "text" : "binary");
                w.WriteNumber("seconds", result.Seconds);
                w.WriteNumber("messages", result.Messages);
                w.WriteNumber("messagesPerSecond", Math.Round(rate, 1));
                w.WriteNumber("megabytesPerSecond", Math.Round(megabytes, 2));
                WriteLatency(w, result.Latency);
                w.WriteNumber("errors", result.Errors);
            });
        }
        else
        {
            var o = console.Out;
            await o.WriteLineAsync($"echo {uri}: {settings.Connections} connections × {settings.InFlight} in flight × {settings.Size} B {(settings.Text ? "text" : "binary")}, {result.Seconds:0.#} s after {settings.Warmup.TotalSeconds:0.#} s warm-up");
            await o.WriteLineAsync($"  messages/s  {rate,14:N0}");
            await o.WriteLineAsync($"  MB/s        {megabytes,14:N1}");
            await o.WriteLineAsync($"  latency     {Latency(result.Latency)}");
            await o.WriteLineAsync($"  errors      {result.Errors,14:N0}");
        }
        return result.Messages > 0 ? 0 : 1;
    }

    private static async Task<int> IdleAsync(Uri uri, Arguments a, bool json, TextWriter? progress, CliConsole console, CancellationToken stop)
    {
        int connections = a.Int("connections", 10_000, 1, 1_000_000);
        int? pid = a.Value("pid") is null ? null : a.Int("pid", 0, 1, int.MaxValue);
        if (pid is int p && IdleLoad.ReadRssKiB(p) is null)
            throw new UsageException($"no process {p} to measure (or /proc is not readable)");
        var result = await IdleLoad.RunAsync(uri, connections, a.Int("warmup-connections", 500, 0, 100_000), pid,
            TimeSpan.FromSeconds(a.Seconds("settle", 3, 0, 600)),
            progress is null ? null : n => progress.Write($"\r  {n,8:N0} connections open   "), stop, a.Flag("compress"));
        progress?.WriteLine();
        if (json)
        {
            await WriteJsonAsync(console, w =>
            {
                w.WriteString("mode", "idle");
                w.WriteString("url", uri.ToString());
                w.WriteNumber("opened", result.Opened);
                w.WriteNumber("errors", result.Errors);
                if (result.RssBeforeKiB is long before)
                    w.WriteNumber("rssBeforeKiB", before);
                if (result.RssAfterKiB is long after)
                    w.WriteNumber("rssAfterKiB", after);
                if (result.KiBPerConnection is double per)
                    w.WriteNumber("kibPerConnection", Math.Round(per, 2));
            });
        }
        else
        {
            var o = console.Out;
            await o.WriteLineAsync($"idle {uri}: {result.Opened:N0} connections open, {result.Errors:N0} errors");
            if (result.KiBPerConnection is double per)
                await o.WriteLineAsync($"  server RSS  {result.RssBeforeKiB:N0} KiB -> {result.RssAfterKiB:N0} KiB: {per:0.00} KiB per connection");
            else
                await o.WriteLineAsync("  (give --pid SERVER_PID to measure the server's memory per connection)");
        }
        return result.Opened > 0 ? 0 : 1;
    }

    private static async Task<int> HandshakeAsync(Uri uri, Arguments a, bool json, TextWriter? progress, CliConsole console, CancellationToken stop)
    {
        int parallel = a.Int("parallel", 4, 1, 1024);
        var duration = TimeSpan.FromSeconds(a.Seconds("duration", 5, 0.1, 86_400));
        var result = await HandshakeLoad.RunAsync(uri, parallel, duration, TimeSpan.FromSeconds(a.Seconds("warmup", 1, 0, 3600)),
            progress is null ? null : (seconds, count) => progress.Write(ProgressLine(seconds, count, "handshakes/s")), stop);
        progress?.WriteLine();
        double rate = result.Completed / result.Seconds;
        if (json)
        {
            await WriteJsonAsync(console, w =>
            {
                w.WriteString("mode", "handshake");
                w.WriteString("url", uri.ToString());
                w.WriteNumber("parallel", parallel);
                w.WriteNumber("seconds", result.Seconds);
                w.WriteNumber("handshakes", result.Completed);
                w.WriteNumber("handshakesPerSecond", Math.Round(rate, 1));
                WriteLatency(w, result.Latency);
                w.WriteNumber("errors", result.Errors);
            });
        }
        else
        {
            var o = console.Out;
            await o.WriteLineAsync($"handshake {uri}: {parallel} in parallel, connect + upgrade + close, {result.Seconds:0.#} s");
            await o.WriteLineAsync($"  handshakes/s {rate,13:N0}");
            await o.WriteLineAsync($"  latency      {Latency(result.Latency)}");
            await o.WriteLineAsync($"  errors       {result.Errors,13:N0}");
        }
        return result.Completed > 0 ? 0 : 1;
    }

    private static Uri ParseUrl(string text, string? option) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "ws" or "wss"
            ? uri
            : throw new UsageException($"{(option is null ? "" : option + ": ")}'{text}' is not a ws:// or wss:// URL");

    private static async Task<int> FanoutAsync(Uri uri, Arguments a, bool json, TextWriter? progress, CliConsole console, CancellationToken stop)
    {
        int? pid = a.Value("pid") is null ? null : a.Int("pid", 0, 1, int.MaxValue);
        // A channel of its own unless told: an earlier run's history and members are not this run's.
        string channel = a.Value("channel") ?? $"fanout-{Guid.NewGuid().ToString("N")[..8]}";
        if (channel.Length is 0 or > 64 || !channel.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '/'))
            throw new UsageException($"--channel: '{channel}' is not a hub channel name (1-64 letters, digits, '-', '_', '.', ':' or '/')");
        var settings = new FanoutSettings(uri, a.Int("subscribers", 10_000, 1, 1_000_000), a.Int("size", 100, 0, 1 << 20),
            TimeSpan.FromSeconds(a.Seconds("duration", 10, 0.1, 86_400)), channel, a.Int("window", 32, 1, 1_000_000), pid,
            a.Value("publish-to") is { } other ? ParseUrl(other, "--publish-to") : null);
        var result = await FanoutLoad.RunAsync(settings,
            progress is null ? null : (seconds, count) => progress.Write(ProgressLine(seconds, count, "deliveries/s")), stop);
        progress?.WriteLine();
        double rate = result.Delivered / result.Seconds;
        if (json)
        {
            await WriteJsonAsync(console, w =>
            {
                w.WriteString("mode", "fanout");
                w.WriteString("url", uri.ToString());
                w.WriteString("channel", result.Channel);
                w.WriteNumber("subscribers", result.Subscribers);
                w.WriteNumber("window", settings.Window);
                w.WriteNumber("seconds", result.Seconds);
                w.WriteNumber("published", result.Published);
                w.WriteNumber("acknowledged", result.Acknowledged);
                w.WriteNumber("publishErrors", result.PublishErrors);
                w.WriteNumber("delivered", result.Delivered);
                w.WriteNumber("deliveriesPerSecond", Math.Round(rate, 1));
                WriteLatency(w, result.Latency);
                w.WriteNumber("lost", result.Lost);
                w.WriteNumber("gaps", result.Gaps);
                w.WriteNumber("duplicates", result.Duplicates);
                w.WriteBoolean("stalled", result.Stalled);
                w.WriteNumber("generatorCpuPercent", Math.Round(result.GeneratorCpuPercent, 1));
                w.WriteNumber("generatorCores", Environment.ProcessorCount);
                if (result.ServerCpuPercent is double server)
                {
                    w.WriteNumber("serverCpuPercent", Math.Round(server, 1));
                    if (result.Delivered > 0)
                        w.WriteNumber("serverCpuNanosecondsPerDelivery", Math.Round(server / 100 * result.Seconds / result.Delivered * 1e9, 1));
                }
                if (result.KiBPerSubscriber is double per)
                    w.WriteNumber("kibPerSubscriber", Math.Round(per, 2));
                w.WriteNumber("closedByServer", result.Dropped);
                w.WriteNumber("errors", result.Errors);
            });
        }
        else
        {
            var o = console.Out;
            await o.WriteLineAsync($"fanout {uri} channel {result.Channel}: {result.Subscribers:N0} subscribers, {result.Published:N0} messages published in {result.Seconds:0.#} s ({result.Acknowledged:N0} acknowledged), window {settings.Window}");
            await o.WriteLineAsync($"  deliveries/s {rate,14:N0}");
            await o.WriteLineAsync($"  latency      {Latency(result.Latency)} (publisher to subscriber)");
            await o.WriteLineAsync($"  checked      {result.Lost:N0} lost, {result.Gaps:N0} gaps, {result.Duplicates:N0} duplicates or out of order, {result.PublishErrors:N0} publishes refused{(result.Stalled ? "; STALLED: no delivery for 5 s with the window full" : "")}");
            await o.WriteLineAsync($"  generator    {result.GeneratorCpuPercent,13:0}% of one core while publishing ({Environment.ProcessorCount} {(Environment.ProcessorCount == 1 ? "core" : "cores")} available to it){(result.GeneratorCpuPercent > 90 ? ": the generator may be the limit" : "")}");
            if (result.ServerCpuPercent is double server)
                await o.WriteLineAsync($"  server       {server,13:0}% of one core while publishing{(result.Delivered > 0 ? $", {server / 100 * result.Seconds / result.Delivered * 1e9:N0} ns of CPU per delivery" : "")}");
            if (result.KiBPerSubscriber is double per)
                await o.WriteLineAsync($"  server RSS   {result.RssBeforeKiB:N0} KiB -> {result.RssAfterKiB:N0} KiB: {per:0.00} KiB per subscriber");
            if (result.Dropped > 0)
                await o.WriteLineAsync($"  closed by the server (too slow: 1013, they would recover with since) {result.Dropped:N0} subscribers");
            await o.WriteLineAsync($"  errors       {result.Errors,14:N0}");
        }
        return result.Delivered > 0 && result.Clean ? 0 : 1;
    }

    private static async Task<int> SoakAsync(Uri uri, Arguments a, bool json, TextWriter? progress, CliConsole console, CancellationToken stop)
    {
        var duration = TimeSpan.FromSeconds(a.Seconds("duration", 1800, 1, 7 * 86_400));
        var settings = new SoakSettings(uri, a.Int("connections", 10_000, 1, 1_000_000), duration,
            TimeSpan.FromSeconds(a.Seconds("sample", 10, 0.5, 3600)),
            TimeSpan.FromSeconds(a.Seconds("warmup", Math.Min(300, duration.TotalSeconds / 4), 0, 86_400)));
        var result = await SoakLoad.RunAsync(settings, progress is null ? null : s => progress.WriteLine(
            string.Create(CultureInfo.InvariantCulture, $"  {s.Seconds,6:0} s  connections {s.Connections,7:N0}  RSS {Mib(s.RssBytes),6:0.0} MiB  GC heap {Mib(s.HeapBytes),6:0.0} MiB  fds {s.Fds,7:N0}  history {Mib(s.HistoryBytes),5:0.0} MiB")), stop);
        var steady = result.Samples.Count(s => s.Seconds >= settings.Warmup.TotalSeconds);
        string growth = result.Growth ?? (steady < 3 ? "too few samples after the warm-up to judge" : "flat");
        if (json)
        {
            await WriteJsonAsync(console, w =>
            {
                w.WriteString("mode", "soak");
                w.WriteString("url", uri.ToString());
                w.WriteNumber("connections", settings.Connections);
                w.WriteNumber("seconds", duration.TotalSeconds);
                w.WriteNumber("connects", result.Connects);
                w.WriteNumber("connectErrors", result.ConnectErrors);
                w.WriteNumber("churned", result.Churned);
                w.WriteNumber("echoes", result.Echoes);
                w.WriteNumber("corrupted", result.Corrupted);
                w.WriteNumber("deliveries", result.Deliveries);
                w.WriteNumber("gaps", result.Gaps);
                w.WriteNumber("droppedSlowReaders", result.Dropped);
                w.WriteNumber("rssSlopeMiBPerMinute", Math.Round(result.RssSlopeMiBPerMinute, 3));
                w.WriteNumber("heapSlopeMiBPerMinute", Math.Round(result.HeapSlopeMiBPerMinute, 3));
                w.WriteString("memory", growth);
                w.WriteString("countersAfter", result.NotReturned ?? "back to baseline");
                w.WriteBoolean("passed", result.Passed);
            });
        }
        else
        {
            var o = console.Out;
            await o.WriteLineAsync($"soak {uri}: {settings.Connections:N0} connections, {duration.TotalSeconds:0} s (warm-up {settings.Warmup.TotalSeconds:0} s)");
            await o.WriteLineAsync($"  connects      {result.Connects,12:N0}  ({result.ConnectErrors:N0} failed, {result.Churned:N0} dropped by churn)");
            await o.WriteLineAsync($"  echoes        {result.Echoes,12:N0}  ({result.Corrupted:N0} corrupted)");
            await o.WriteLineAsync($"  deliveries    {result.Deliveries,12:N0}  ({result.Gaps:N0} gaps; {result.Dropped:N0} slow readers closed with 1013)");
            await o.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  slope         RSS {result.RssSlopeMiBPerMinute:+0.000;-0.000} MiB/min, GC heap {result.HeapSlopeMiBPerMinute:+0.000;-0.000} MiB/min after warm-up: {growth}"));
            await o.WriteLineAsync($"  after         {result.NotReturned ?? "every counter back to its baseline"}");
            await o.WriteLineAsync(result.Passed ? "  PASSED" : "  FAILED");
        }
        return result.Passed ? 0 : 1;
    }

    private static double Mib(long bytes) => bytes < 0 ? double.NaN : bytes / 1048576.0;

    // The live line on stderr: seconds measured so far, or (negative) the warm-up's seconds left.
    private static string ProgressLine(double seconds, long count, string unit) => seconds < 0
        ? string.Create(CultureInfo.InvariantCulture, $"\r  warming up: {-seconds,4:0} s left, not measured yet          ")
        : string.Create(CultureInfo.InvariantCulture, $"\r  {seconds,5:0.0} s  {(seconds > 0 ? count / seconds : 0),12:N0} {unit}          ");

    // One unit for the whole line: milliseconds once the slowest percentile reaches 10 ms.
    private static string Latency(Histogram h)
    {
        long[] values = [h.Percentile(50), h.Percentile(90), h.Percentile(99), h.Percentile(99.9)];
        bool ms = values[3] >= 10_000_000;
        string F(long ns) => ms ? (ns / 1e6).ToString("0.##", CultureInfo.InvariantCulture) : (ns / 1e3).ToString("0.#", CultureInfo.InvariantCulture);
        return $"{(ms ? "ms" : "µs")}: p50 {F(values[0])}  p90 {F(values[1])}  p99 {F(values[2])}  p99.9 {F(values[3])}";
    }

    private static void WriteLatency(Utf8JsonWriter w, Histogram h)
    {
        w.WriteStartObject("latencyMicroseconds");
        foreach (var (name, p) in new[] { ("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9) })
            w.WriteNumber(name, Math.Round(h.Percentile(p) / 1e3, 1));
        w.WriteEndObject();
    }

    private static async Task WriteJsonAsync(CliConsole console, Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        await console.Out.WriteLineAsync(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}

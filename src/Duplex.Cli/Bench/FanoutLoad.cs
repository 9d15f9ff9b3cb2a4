using System.Buffers.Binary;
using System.Buffers.Text;
using System.Diagnostics;
using System.Text;

namespace Duplex.Cli.Bench;

internal sealed record FanoutSettings(Uri Uri, int Subscribers, int Size, TimeSpan Duration, string Channel, int Window,
    int? ServerPid = null, Uri? PublishUri = null);

/// <summary>
/// What a fan-out run saw. <see cref="Delivered"/> counts the deliveries made while publishing
/// (the rate's numerator); the checks cover every message each subscriber got from its join to
/// the end of the drain: <see cref="Lost"/> acknowledged messages a connected subscriber never got,
/// <see cref="Gaps"/> offsets skipped, <see cref="Duplicates"/> offsets seen twice or out of order.
/// </summary>
internal sealed record FanoutResult(string Channel, int Subscribers, long Published, long Acknowledged, long PublishErrors,
    long Delivered, double Seconds, long Lost, long Gaps, long Duplicates, long Errors, long Dropped, bool Stalled,
    double GeneratorCpuPercent, double? ServerCpuPercent, long? RssBeforeKiB, long? RssAfterKiB, Histogram Latency)
{
    public double? KiBPerSubscriber => RssBeforeKiB is long b && RssAfterKiB is long a && Subscribers > 0 ? (a - b) / (double)Subscribers : null;

    /// <summary>Nothing lost, skipped, repeated or refused, and publishing never stalled.</summary>
    public bool Clean => Lost == 0 && Gaps == 0 && Duplicates == 0 && PublishErrors == 0 && !Stalled;
}

/// <summary>
/// Fan-out through a Duplex hub: subscribers join one channel, one publisher publishes, and each
/// subscriber checks what it gets: offsets one after another from its join's position, none
/// twice, and at the end every acknowledged message. The publisher stays at most a window of
/// messages ahead of the slowest subscriber still connected (a subscriber the server closes, 1013,
/// stops counting), so what is measured is delivery, not a queue filling up. Each message's data
/// begins with the time it was sent (Stopwatch ticks, then '|'): every delivery's latency,
/// publisher to subscriber, is recorded. The generator's own CPU is reported, so a reader can
/// see whether the generator was the limit.
/// </summary>
internal static class FanoutLoad
{
    private const int MaxFrame = 1 << 20;

    // No progress for this long while the window is full: the run stops and says so.
    private static readonly TimeSpan StallLimit = TimeSpan.FromSeconds(5);

    // One subscriber's view of the channel. Written only by its reader; read by the publisher
    // loop and the summary through Volatile (a torn view only delays the window by a message).
    private sealed class Subscriber
    {
        public long JoinedAt = -1; // the channel's offset when the join was answered; -1 until then
        public long Last;          // the highest offset received (starts at JoinedAt)
        public long Received;      // distinct messages received
        public long Measured;      // messages received while the publisher was publishing
        public long Gaps, Duplicates;
        public bool Closed;        // by the server, or failed
    }

    public static async Task<FanoutResult> RunAsync(FanoutSettings settings, Action<double, long>? progress, CancellationToken stop)
    {
        string channel = settings.Channel;
        string join = $"{{\"type\":\"join\",\"channel\":\"{channel}\",\"id\":\"join\"}}";
        string padding = new('x', Math.Max(0, settings.Size - 21)); // the time stamp and '|' take up to 21 of the size
        long? before = settings.ServerPid is int p0 ? IdleLoad.ReadRssKiB(p0) : null;
        long errors = 0;
        // One histogram per thread that reads (a histogram is 32 KiB: not one per subscriber).
        using var latencies = new ThreadLocal<Histogram>(() => new Histogram(), trackAllValues: true);
        long lastArrival = Stopwatch.GetTimestamp(); // of anything to any subscriber: the joins' presence events settle first
        bool measuring = false;
        var subscribers = new List<Subscriber>();
        var readers = new List<Task>();
        int toJoin = settings.Subscribers;
        var joinedAll = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Joined()
        {
            if (Interlocked.Decrement(ref toJoin) == 0)
                joinedAll.TrySetResult();
        }

        // Subscribers are bare sockets that parse frames in place: a generator that decodes
        // each message with a full client costs about what the server spends delivering it.
        var connections = new RawConnection?[settings.Subscribers];
        int connectErrors = 0;
        byte[] joinFrame = RawConnection.BuildFrame(Encoding.UTF8.GetBytes(join), 1);
        using (var gate = new SemaphoreSlim(64)) // a burst of 10,000 SYNs would overflow the backlog
        {
            await Task.WhenAll(Enumerable.Range(0, settings.Subscribers).Select(async i =>
            {
                await gate.WaitAsync(stop);
                try
                {
                    var connection = await RawConnection.OpenAsync(settings.Uri, stop);
                    connections[i] = connection;
                    var subscriber = new Subscriber();
                    lock (subscribers)
                        subscribers.Add(subscriber);
                    await connection.Stream.WriteAsync(joinFrame, stop);
                    lock (readers)
                        readers.Add(ReadAsync(connection, subscriber));
                }
                catch (Exception e) when (BenchClient.IsFailure(e))
                {
                    Interlocked.Increment(ref connectErrors);
                }
                finally
                {
                    gate.Release();
                }
            }));
        }
        errors += connectErrors;
        for (int i = 0; i < connectErrors; i++)
            Joined();

        async Task ReadAsync(RawConnection connection, Subscriber me)
        {
            var buffer = new byte[Math.Max(16 * 1024, settings.Size * 4 + 1024)];
            int start = 0, filled = connection.Leftover.Length;
            connection.Leftover.CopyTo(buffer, 0);
            try
            {
                while (true)
                {
                    var result = Parse(buffer.AsSpan(start, filled - start), me);
                    start += result.Consumed;
                    if (result.Pong is { } pong)
                        await connection.Stream.WriteAsync(pong, stop);
                    if (result.Closed)
                        break;
                    if (result.Messages > 0)
                        Volatile.Write(ref lastArrival, Stopwatch.GetTimestamp());
                    if (start == filled)
                    {
                        start = filled = 0;
                    }
                    else if (filled == buffer.Length)
                    {
                        // A partial frame at the end: move it to the front, or grow for a frame larger than the buffer.
                        int partial = filled - start;
                        if (start == 0)
                        {
                            if (buffer.Length >= MaxFrame)
                                throw new IOException("a frame from the hub is over 1 MiB");
                            Array.Resize(ref buffer, Math.Min(MaxFrame, buffer.Length * 2));
                        }
                        else
                        {
                            buffer.AsSpan(start, partial).CopyTo(buffer);
                            start = 0;
                            filled = partial;
                        }
                    }
                    int read = await connection.Stream.ReadAsync(buffer.AsMemory(filled), stop);
                    if (read == 0)
                        break;
                    filled += read;
                }
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException or ObjectDisposedException)
            {
            }
            finally
            {
                Volatile.Write(ref me.Closed, true);
                if (me.JoinedAt < 0)
                {
                    Interlocked.Increment(ref errors); // gone before it had joined
                    Joined();
                }
            }
        }

        // Parses the whole frames at the start of `data` (server frames: not masked); returns what it consumed.
        (int Consumed, int Messages, bool Closed, byte[]? Pong) Parse(ReadOnlySpan<byte> data, Subscriber me)
        {
            int at = 0, messages = 0;
            byte[]? pong = null;
            while (data.Length - at >= 2)
            {
                byte first = data[at], second = data[at + 1];
                if ((second & 0x80) != 0)
                    throw new IOException("the hub sent a masked frame");
                int length7 = second & 0x7F;
                int header = 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0);
                if (data.Length - at < header)
                    break;
                long length = length7 == 126 ? BinaryPrimitives.ReadUInt16BigEndian(data[(at + 2)..])
                    : length7 == 127 ? (long)BinaryPrimitives.ReadUInt64BigEndian(data[(at + 2)..]) : length7;
                if (length > MaxFrame)
                    throw new IOException("a frame from the hub is over 1 MiB");
                if (data.Length - at - header < length)
                    break;
                var payload = data.Slice(at + header, (int)length);
                at += header + (int)length;
                switch (first & 0x0F)
                {
                    case 8:
                        return (at, messages, true, pong);
                    case 9:
                        pong = RawConnection.BuildFrame(payload, 0xA);
                        break;
                    case 10:
                        break;
                    case 1 or 2 when (first & 0x80) != 0:
                        OnMessage(payload, me);
                        messages++;
                        break;
                    default:
                        throw new IOException("the hub sent a fragmented message (its messages are single frames)");
                }
            }
            return (at, messages, false, pong);
        }

        void OnMessage(ReadOnlySpan<byte> payload, Subscriber me)
        {
            if (me.JoinedAt < 0)
            {
                if (payload.StartsWith("{\"type\":\"ok\""u8) && payload.IndexOf("\"id\":\"join\""u8) >= 0 && Offset(payload) is long at)
                {
                    me.Last = at;
                    Volatile.Write(ref me.JoinedAt, at);
                    Joined();
                }
                return; // the welcome, and presence events before the answer
            }
            if (!payload.StartsWith("{\"type\":\"message\""u8) || Offset(payload) is not long offset)
                return; // presence events
            if (offset <= me.Last)
            {
                me.Duplicates++;
                return;
            }
            me.Gaps += offset - me.Last - 1;
            Volatile.Write(ref me.Last, offset);
            Volatile.Write(ref me.Received, me.Received + 1);
            if (Volatile.Read(ref measuring))
            {
                Volatile.Write(ref me.Measured, me.Measured + 1);
                if (SentAt(payload) is long sent)
                    latencies.Value!.Record((long)((Stopwatch.GetTimestamp() - sent) * (1e9 / Stopwatch.Frequency)));
            }
        }

        // Every subscriber has its join answered, or the joins have had time to land.
        await Task.WhenAny(joinedAll.Task, Task.Delay(TimeSpan.FromSeconds(5 + settings.Subscribers / 2000.0), stop));
        // A join is announced to every member (channels up to 1,000): publishing starts once those
        // events have stopped arriving, so what is measured is the publishes' fan-out.
        for (var quiet = Stopwatch.StartNew(); quiet.Elapsed < TimeSpan.FromSeconds(30)
             && Stopwatch.GetElapsedTime(Volatile.Read(ref lastArrival)) < TimeSpan.FromMilliseconds(500);)
            await Task.Delay(100, stop);
        await Task.Delay(500, stop);
        long? after = settings.ServerPid is int p1 ? IdleLoad.ReadRssKiB(p1) : null;
        Subscriber[] joined;
        lock (subscribers)
            joined = [.. subscribers.Where(s => Volatile.Read(ref s.JoinedAt) >= 0)];

        // Another node's URL measures delivery between nodes (through the engine they share).
        await using var publisher = await Publisher.StartAsync(settings.PublishUri ?? settings.Uri, join, stop);
        Volatile.Write(ref measuring, true);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var serverCpu = settings.ServerPid is int p2 ? IdleLoad.ReadCpuTime(p2) : null;
        var clock = Stopwatch.StartNew();
        long published = 0, nextReport = 1000, floor = publisher.StartOffset;
        bool stalled = false;
        while (clock.Elapsed < settings.Duration && !stop.IsCancellationRequested && !publisher.Failed)
        {
            // At most `Window` messages ahead of the slowest subscriber still connected (the
            // subscribers are scanned only when the last scan's floor is not far enough).
            long needed = publisher.StartOffset + published - settings.Window;
            if (floor < needed)
            {
                floor = await WaitForWindowAsync(joined, needed, stop);
                if (floor < needed)
                {
                    stalled = true;
                    break;
                }
            }
            await publisher.PublishAsync(channel, padding, published, stop);
            published++;
            if (progress is not null && clock.ElapsedMilliseconds >= nextReport)
            {
                progress(clock.Elapsed.TotalSeconds, Measured(joined));
                nextReport += 1000;
            }
        }
        double seconds = clock.Elapsed.TotalSeconds;
        double cpuPercent = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / seconds * 100;
        double? serverCpuPercent = settings.ServerPid is int p3 && serverCpu is { } s0 && IdleLoad.ReadCpuTime(p3) is { } s1
            ? (s1 - s0).TotalSeconds / seconds * 100 : null;
        Volatile.Write(ref measuring, false);
        long total = Measured(joined);

        // Drain: every acknowledged message reaches every subscriber still connected.
        await publisher.WaitForAnswersAsync(published, TimeSpan.FromSeconds(10));
        long lastOffset = publisher.LastOffset;
        await WaitForWindowAsync(joined, lastOffset, stop, drain: true);
        long lost = 0, gaps = 0, duplicates = 0, dropped = 0;
        var latency = new Histogram();
        foreach (var s in joined)
        {
            // A subscriber the server closed (too slow: 1013) would recover with `since`: not lost here, but counted.
            if (Volatile.Read(ref s.Closed))
                dropped++;
            else
                lost += Math.Max(0, lastOffset - Volatile.Read(ref s.Last)) + Volatile.Read(ref s.Gaps);
            gaps += Volatile.Read(ref s.Gaps);
            duplicates += Volatile.Read(ref s.Duplicates);
        }

        // A clean close: our close frame, the server's answer (which ends each reader), then the socket.
        foreach (var connection in connections)
        {
            if (connection is null)
                continue;
            try
            {
                await connection.Stream.WriteAsync(RawConnection.CloseFrame, stop);
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is ObjectDisposedException)
            {
            }
        }
        Task[] pending;
        lock (readers)
            pending = [.. readers];
        await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        foreach (var connection in connections)
            connection?.Drop();
        foreach (var one in latencies.Values)
            latency.Add(one);
        return new FanoutResult(channel, joined.Length, published, publisher.Acknowledged, publisher.Errors, total, seconds,
            lost, gaps, duplicates, Interlocked.Read(ref errors), dropped, stalled, cpuPercent, serverCpuPercent, before, after, latency);
    }

    // Waits until every connected subscriber has reached `offset`, and returns the lowest offset
    // they have reached: below `offset` when nothing moved for the limit (StallLimit; 2 s for the
    // drain). With nobody connected, long.MaxValue.
    private static async Task<long> WaitForWindowAsync(Subscriber[] subscribers, long offset, CancellationToken stop, bool drain = false)
    {
        long progressMark = -1;
        var since = Stopwatch.StartNew();
        while (true)
        {
            long lowest = long.MaxValue, received = 0;
            foreach (var s in subscribers)
            {
                if (!Volatile.Read(ref s.Closed))
                    lowest = Math.Min(lowest, Volatile.Read(ref s.Last));
                received += Volatile.Read(ref s.Received);
            }
            if (lowest >= offset)
                return lowest;
            if (received != progressMark)
            {
                progressMark = received;
                since.Restart();
            }
            else if (since.Elapsed > (drain ? TimeSpan.FromSeconds(2) : StallLimit))
            {
                return lowest;
            }
            await Task.Delay(1, stop); // leave the core to the subscribers' reads
        }
    }

    /// <summary>
    /// The publishing connection: it must join to publish, so it also gets every message, which it
    /// reads and drops (unread, the hub would close it as a slow consumer). Each publish carries
    /// its number as id; the answers say which were stored and at which offset.
    /// </summary>
    private sealed class Publisher : IAsyncDisposable
    {
        private readonly WebSocketConnection _ws;
        private readonly Task _reading;
        private readonly TaskCompletionSource<long> _joined = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _acknowledged, _errors, _lastOffset;
        private volatile bool _failed;

        private Publisher(WebSocketConnection ws, CancellationToken stop)
        {
            _ws = ws;
            _reading = ReadAsync(stop);
        }

        public long StartOffset { get; private set; }
        public long Acknowledged => Interlocked.Read(ref _acknowledged);
        public long Errors => Interlocked.Read(ref _errors);
        public long LastOffset => Interlocked.Read(ref _lastOffset);
        public bool Failed => _failed;

        public static async Task<Publisher> StartAsync(Uri uri, string join, CancellationToken stop)
        {
            var ws = await BenchClient.ConnectAsync(uri, stop);
            var publisher = new Publisher(ws, stop);
            await ws.SendTextAsync(join, stop);
            publisher.StartOffset = await publisher._joined.Task.WaitAsync(TimeSpan.FromSeconds(30), stop);
            Interlocked.Exchange(ref publisher._lastOffset, publisher.StartOffset);
            return publisher;
        }

        public ValueTask PublishAsync(string channel, string padding, long number, CancellationToken stop) =>
            _ws.SendTextAsync($"{{\"type\":\"publish\",\"channel\":\"{channel}\",\"id\":{number},\"data\":\"{Stopwatch.GetTimestamp()}|{padding}\"}}", stop);

        public async Task WaitForAnswersAsync(long published, TimeSpan limit)
        {
            for (var clock = Stopwatch.StartNew(); Acknowledged + Errors < published && clock.Elapsed < limit && !_failed;)
                await Task.Delay(5);
        }

        private async Task ReadAsync(CancellationToken stop)
        {
            try
            {
                while (true)
                {
                    var message = await _ws.ReceiveAsync(stop);
                    if (message.IsClose)
                        break;
                    var payload = message.Payload.Span;
                    if (payload.StartsWith("{\"type\":\"ok\""u8) && Offset(payload) is long offset)
                    {
                        if (payload.IndexOf("\"id\":\"join\""u8) >= 0)
                        {
                            _joined.TrySetResult(offset);
                            continue;
                        }
                        Interlocked.Increment(ref _acknowledged);
                        if (offset > Interlocked.Read(ref _lastOffset))
                            Interlocked.Exchange(ref _lastOffset, offset);
                    }
                    else if (payload.StartsWith("{\"type\":\"error\""u8))
                    {
                        Interlocked.Increment(ref _errors);
                        _joined.TrySetException(new IOException("the hub refused the publisher's join: " + Encoding.UTF8.GetString(payload)));
                    }
                }
            }
            catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
            {
            }
            finally
            {
                _failed = true;
                _joined.TrySetException(new IOException("the publisher's connection closed before its join was answered"));
            }
        }

        public async ValueTask DisposeAsync()
        {
            await BenchClient.CloseAsync(_ws);
            await _reading.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private static long Measured(Subscriber[] subscribers)
    {
        long sum = 0;
        foreach (var s in subscribers)
            sum += Volatile.Read(ref s.Measured);
        return sum;
    }

    // The "offset": number of an ok or a message event.
    private static long? Offset(ReadOnlySpan<byte> payload)
    {
        int at = payload.IndexOf("\"offset\":"u8);
        return at >= 0 && Utf8Parser.TryParse(payload[(at + 9)..], out long offset, out _) ? offset : null;
    }

    // The send time at the start of a message event's data: "data":"<ticks>|…
    private static long? SentAt(ReadOnlySpan<byte> payload)
    {
        int at = payload.IndexOf("\"data\":\""u8);
        if (at < 0)
            return null;
        var rest = payload[(at + 8)..];
        int bar = rest.IndexOf((byte)'|');
        return bar > 0 && Utf8Parser.TryParse(rest[..bar], out long ticks, out int used) && used == bar ? ticks : null;
    }
}

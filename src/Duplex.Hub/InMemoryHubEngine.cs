using System.Collections.Concurrent;

namespace Duplex.Hub;

/// <summary>
/// Channel order and history in this process: per channel the last N messages, for at most T,
/// and across all channels at most a number of bytes.
/// </summary>
/// <remarks>
/// Memory is bounded three ways: by count per channel, by age (a sweep every second drops what
/// has expired, used channels or not), and by <c>maxBytes</c> over all channels. At the byte
/// bound the channel being published to gives up its oldest messages first, then the others: a
/// client flooding channels pays with its own history before anyone else's. A dropped message
/// cannot be recovered with <c>since</c> (the client is told <c>recovered: false</c>). Each message
/// is kept once: its framed event, with its data a slice of it.
/// A channel's stream has an epoch, chosen at random when its log is created: offsets count up
/// within an epoch, and a position from another epoch (this process restarted, or the log was
/// swept) cannot be recovered. A log with nothing kept, unused for the history age and not
/// <see cref="InUse"/> is swept away, so channels that come and go leave nothing behind.
/// </remarks>
public sealed class InMemoryHubEngine : IHubEngine
{
    private readonly ConcurrentDictionary<string, ChannelLog> _channels = new(StringComparer.Ordinal);
    private readonly int _historySize;
    private readonly TimeSpan _historyAge;
    private readonly long _maxBytes;
    private readonly TimeProvider _time;
    private readonly ITimer _sweep;
    private long _bytes;   // the MemorySize of every kept message, all channels (changed under each channel's lock)

    // Everything but Epoch is guarded by lock (this). A removed log is no longer in _channels:
    // whoever locks one and finds it removed looks the channel up again.
    private sealed class ChannelLog(DateTimeOffset now)
    {
        public readonly string Epoch = NewEpoch();
        public long Latest;
        public DateTimeOffset LastUsed = now;
        public bool Removed;
        public readonly Queue<HubMessage> Kept = new();
    }

    /// <summary>
    /// An engine for one node: per channel, the last <paramref name="historySize"/> messages no older
    /// than <paramref name="historyAge"/>, and at most <paramref name="maxBytes"/> of history over all
    /// channels (the oldest go first past it).
    /// </summary>
    /// <param name="historySize">Messages kept per channel for recovery and history requests.</param>
    /// <param name="historyAge">How long a message is kept.</param>
    /// <param name="time">The clock (tests replace it).</param>
    /// <param name="maxBytes">History bytes kept over all channels.</param>
    public InMemoryHubEngine(int historySize, TimeSpan historyAge, TimeProvider? time = null, long maxBytes = 256L * 1024 * 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(historySize);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        _historySize = historySize;
        _historyAge = historyAge;
        _maxBytes = maxBytes;
        _time = time ?? TimeProvider.System;
        // The timer holds the engine weakly: an engine nobody uses any more is collected, and its sweep stops.
        var self = new WeakReference<InMemoryHubEngine>(this);
        var holder = new ITimer?[1];
        _sweep = _time.CreateTimer(static state =>
        {
            var (weak, timer) = ((WeakReference<InMemoryHubEngine>, ITimer?[]))state!;
            if (weak.TryGetTarget(out var engine))
                engine.Sweep();
            else
                timer[0]?.Dispose();
        }, (self, holder), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        holder[0] = _sweep;
    }

    /// <summary>
    /// Channels whose log the sweep must keep even when empty and quiet (the hub sets it: channels
    /// with members), so that a quiet channel's subscribers keep their position.
    /// </summary>
    public Func<string, bool>? InUse { get; set; }

    /// <summary>Channel logs kept now (with or without messages).</summary>
    public int ChannelLogs => _channels.Count;

    /// <summary>A new epoch: 48 random bits, URL-safe.</summary>
    public static string NewEpoch()
    {
        Span<byte> bytes = stackalloc byte[6];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
        return Convert.ToBase64String(bytes).Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Bytes of history kept now, over all channels.</summary>
    public long HistoryBytes => Interlocked.Read(ref _bytes);

    // Synchronous: a token can only have been cancelled before the call.
    ValueTask<HubMessage> IHubEngine.PublishAsync(string channel, ReadOnlyMemory<byte> data, string from, CancellationToken cancellationToken) =>
        cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<HubMessage>(cancellationToken) : new(Publish(channel, data, from));

    ValueTask<HubPosition> IHubEngine.SinceAsync(string channel, long since, string? epoch, CancellationToken cancellationToken) =>
        cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<HubPosition>(cancellationToken) : new(Since(channel, since, epoch));

    ValueTask<IReadOnlyList<HubMessage>> IHubEngine.HistoryAsync(string channel, int limit, long before, CancellationToken cancellationToken) =>
        cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<IReadOnlyList<HubMessage>>(cancellationToken) : new(History(channel, limit, before));

    /// <summary>Appends a message with the channel's next offset.</summary>
    public HubMessage Publish(string channel, ReadOnlyMemory<byte> data, string from)
    {
        while (true)
        {
            var log = Log(channel);
            HubMessage message;
            lock (log)
            {
                if (log.Removed)
                    continue;
                var now = _time.GetUtcNow();
                log.LastUsed = now;
                message = HubMessage.CreateFramed(channel, log.Epoch, ++log.Latest, data, from, now);
                log.Kept.Enqueue(message);
                Interlocked.Add(ref _bytes, message.MemorySize);
                Trim(log, _historySize);
                // Over the byte bound: this channel pays first (keeping the message just published).
                while (Interlocked.Read(ref _bytes) > _maxBytes && log.Kept.Count > 1)
                    Drop(log);
            }
            if (Interlocked.Read(ref _bytes) > _maxBytes)
                EvictElsewhere(log);
            return message;
        }
    }

    /// <inheritdoc cref="IHubEngine.SinceAsync"/>
    public HubPosition Since(string channel, long since, string? epoch = null)
    {
        while (true)
        {
            var log = Log(channel);
            lock (log)
            {
                if (log.Removed)
                    continue;
                log.LastUsed = _time.GetUtcNow();
                Trim(log, _historySize);
                if (epoch is not null && epoch != log.Epoch)
                    return new(log.Epoch, log.Latest, null); // another stream's position: gone
                if (since >= log.Latest)
                    return new(log.Epoch, log.Latest, since == log.Latest ? [] : null);
                long oldest = log.Kept.Count == 0 ? log.Latest + 1 : log.Kept.Peek().Offset;
                if (since + 1 < oldest)
                    return new(log.Epoch, log.Latest, null); // some were dropped from history: cannot recover
                return new(log.Epoch, log.Latest, log.Kept.Where(m => m.Offset > since).ToList());
            }
        }
    }

    /// <inheritdoc cref="IHubEngine.HistoryAsync"/>
    public IReadOnlyList<HubMessage> History(string channel, int limit, long before = long.MaxValue)
    {
        if (!_channels.TryGetValue(channel, out var log))
            return [];
        lock (log)
        {
            Trim(log, _historySize);
            var older = log.Kept.Where(m => m.Offset < before).ToList();
            return older.GetRange(Math.Max(0, older.Count - limit), Math.Min(limit, older.Count));
        }
    }

    private ChannelLog Log(string channel) =>
        _channels.TryGetValue(channel, out var log) ? log : _channels.GetOrAdd(channel, static (_, time) => new ChannelLog(time.GetUtcNow()), _time);

    /// <summary>Drops expired history in every channel (the timer calls it every second).</summary>
    internal void Sweep()
    {
        var quiet = _time.GetUtcNow() - _historyAge;
        foreach (var (channel, log) in _channels)
        {
            lock (log)
            {
                Trim(log, _historySize);
                if (log.Kept.Count > 0 || log.LastUsed > quiet || InUse?.Invoke(channel) == true)
                    continue;
                log.Removed = true;
                _channels.TryRemove(new KeyValuePair<string, ChannelLog>(channel, log));
            }
        }
    }

    // Under the log's lock: over the count, or expired.
    private void Trim(ChannelLog log, int keep)
    {
        var cutoff = _time.GetUtcNow() - _historyAge;
        while (log.Kept.Count > keep || (log.Kept.Count > 0 && log.Kept.Peek().Time < cutoff))
            Drop(log);
    }

    // Under the log's lock.
    private void Drop(ChannelLog log) => Interlocked.Add(ref _bytes, -log.Kept.Dequeue().MemorySize);

    // The publishing channel has nothing more to give: the oldest messages of the others go.
    private void EvictElsewhere(ChannelLog publishing)
    {
        foreach (var log in _channels.Values)
        {
            if (ReferenceEquals(log, publishing))
                continue;
            lock (log)
            {
                while (log.Kept.Count > 0 && Interlocked.Read(ref _bytes) > _maxBytes)
                    Drop(log);
            }
            if (Interlocked.Read(ref _bytes) <= _maxBytes)
                return;
        }
    }
}

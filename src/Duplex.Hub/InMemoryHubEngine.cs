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
/// A channel's log (its last offset) is kept after its messages go, so offsets never restart.
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

    private sealed class ChannelLog
    {
        public long Latest;
        public readonly Queue<HubMessage> Kept = new();   // guarded by lock (this)
    }

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

    /// <summary>Bytes of history kept now, over all channels.</summary>
    public long HistoryBytes => Interlocked.Read(ref _bytes);

    public HubMessage Publish(string channel, ReadOnlyMemory<byte> data, string from)
    {
        var log = _channels.GetOrAdd(channel, static _ => new ChannelLog());
        HubMessage message;
        lock (log)
        {
            message = HubMessage.CreateFramed(channel, ++log.Latest, data, from, _time.GetUtcNow());
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

    public (long Latest, IReadOnlyList<HubMessage>? Missed) Since(string channel, long since)
    {
        if (!_channels.TryGetValue(channel, out var log))
            return (0, since == 0 ? [] : null);
        lock (log)
        {
            Trim(log, _historySize);
            if (since >= log.Latest)
                return (log.Latest, since == log.Latest ? [] : null);
            long oldest = log.Kept.Count == 0 ? log.Latest + 1 : log.Kept.Peek().Offset;
            if (since + 1 < oldest)
                return (log.Latest, null); // some were dropped from history: cannot recover
            return (log.Latest, log.Kept.Where(m => m.Offset > since).ToList());
        }
    }

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

    /// <summary>Drops expired history in every channel (the timer calls it every second).</summary>
    internal void Sweep()
    {
        foreach (var log in _channels.Values)
        {
            lock (log)
                Trim(log, _historySize);
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

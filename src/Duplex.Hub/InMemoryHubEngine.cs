using System.Collections.Concurrent;

namespace Duplex.Hub;

/// <summary>Channel order and history in this process: the last N messages, for at most T, per channel.</summary>
public sealed class InMemoryHubEngine(int historySize, TimeSpan historyAge, TimeProvider? time = null) : IHubEngine
{
    private readonly ConcurrentDictionary<string, ChannelLog> _channels = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    private sealed class ChannelLog
    {
        public long Latest;
        public readonly Queue<HubMessage> Kept = new();
    }

    public HubMessage Publish(string channel, ReadOnlyMemory<byte> data, string from)
    {
        var log = _channels.GetOrAdd(channel, static _ => new ChannelLog());
        lock (log)
        {
            var message = new HubMessage(channel, ++log.Latest, data, from, _time.GetUtcNow());
            log.Kept.Enqueue(message);
            Trim(log);
            return message;
        }
    }

    public (long Latest, IReadOnlyList<HubMessage>? Missed) Since(string channel, long since)
    {
        if (!_channels.TryGetValue(channel, out var log))
            return (0, since == 0 ? [] : null);
        lock (log)
        {
            Trim(log);
            if (since >= log.Latest)
                return (log.Latest, since == log.Latest ? [] : null);
            long oldest = log.Kept.Count == 0 ? log.Latest + 1 : log.Kept.Peek().Offset;
            if (since + 1 < oldest)
                return (log.Latest, null); // some were dropped from history: cannot recover
            return (log.Latest, log.Kept.Where(m => m.Offset > since).ToList());
        }
    }

    public IReadOnlyList<HubMessage> History(string channel, int limit)
    {
        if (!_channels.TryGetValue(channel, out var log))
            return [];
        lock (log)
        {
            Trim(log);
            return log.Kept.Skip(Math.Max(0, log.Kept.Count - limit)).ToList();
        }
    }

    private void Trim(ChannelLog log)
    {
        var cutoff = _time.GetUtcNow() - historyAge;
        while (log.Kept.Count > historySize || (log.Kept.Count > 0 && log.Kept.Peek().Time < cutoff))
            log.Kept.Dequeue();
    }
}

using System.Collections.Concurrent;

namespace Duplex;

/// <summary>
/// One timer for all connections that share a check period, instead of a timer per connection
/// (an idle server's memory per connection counts). Each tick asks every connection's protocol
/// what falls due: a keep-alive ping, its timeout, or the close timeout.
/// The timer holds connections weakly: a connection the application dropped without closing
/// can still be collected.
/// </summary>
internal static class ConnectionTimers
{
    /// <summary>A connection's place on a ticker; <see cref="Remove"/> takes it off.</summary>
    internal sealed class Entry(WebSocketConnection connection, Ticker ticker)
    {
        public readonly WeakReference<WebSocketConnection> Connection = new(connection);
        public readonly Ticker Ticker = ticker;
    }

    internal sealed class Ticker
    {
        public readonly ConcurrentDictionary<Entry, byte> Entries = new();
        public Timer? Timer;
    }

    private static readonly ConcurrentDictionary<long, Ticker> Tickers = new();

    /// <summary>Starts checking a connection.</summary>
    public static Entry Add(WebSocketConnection connection, WebSocketOptions options)
    {
        // Check a few times per the shortest of the timeouts and the keep-alive interval, at most every 10 ms.
        double shortest = Math.Min(options.CloseTimeout.TotalMilliseconds, options.SendTimeout.TotalMilliseconds);
        if (options.KeepAliveEnabled)
            shortest = Math.Min(shortest, Math.Min(options.KeepAliveInterval.TotalMilliseconds, options.KeepAliveTimeout.TotalMilliseconds));
        long period = Math.Max(10, (long)(shortest / 8));
        var ticker = Tickers.GetOrAdd(period, static p =>
        {
            var t = new Ticker();
            t.Timer = new Timer(static state => Tick((Ticker)state!), t, p, p);
            return t;
        });
        var entry = new Entry(connection, ticker);
        ticker.Entries.TryAdd(entry, 0);
        return entry;
    }

    public static void Remove(Entry? entry) => entry?.Ticker.Entries.TryRemove(entry, out _);

    private static void Tick(Ticker ticker)
    {
        foreach (var entry in ticker.Entries.Keys)
        {
            if (entry.Connection.TryGetTarget(out var connection))
                connection.OnTimer();
            else
                ticker.Entries.TryRemove(entry, out _);
        }
    }
}

using System.Diagnostics.Metrics;

namespace Duplex.Hub;

/// <summary>Counters for /metrics.</summary>
public sealed class HubMetrics
{
    private long _connections, _messagesIn, _messagesOut, _bytesIn, _bytesOut, _dropped;

    /// <summary>Hub connections open now.</summary>
    public long Connections => Volatile.Read(ref _connections);
    /// <summary>Requests received from clients, in all.</summary>
    public long MessagesIn => Volatile.Read(ref _messagesIn);
    /// <summary>Messages sent to clients (deliveries, answers, presence events), in all.</summary>
    public long MessagesOut => Volatile.Read(ref _messagesOut);
    /// <summary>Bytes of requests received, in all.</summary>
    public long BytesIn => Volatile.Read(ref _bytesIn);
    /// <summary>Bytes sent to clients, in all.</summary>
    public long BytesOut => Volatile.Read(ref _bytesOut);
    /// <summary>Clients closed with 1013 because they read too slowly for their bounded outbox, in all.</summary>
    public long DroppedSlowConsumers => Volatile.Read(ref _dropped);

    internal void ConnectionOpened() => Interlocked.Increment(ref _connections);
    internal void ConnectionClosed() => Interlocked.Decrement(ref _connections);
    internal void Received(int bytes)
    {
        Interlocked.Increment(ref _messagesIn);
        Interlocked.Add(ref _bytesIn, bytes);
    }
    internal void Published(int receivers, int bytes)
    {
        if (Deliveries.Enabled)
            Deliveries.Add(receivers);
        Interlocked.Add(ref _messagesOut, receivers);
        Interlocked.Add(ref _bytesOut, (long)receivers * bytes);
    }
    internal void Sent(int bytes)
    {
        Interlocked.Increment(ref _messagesOut);
        Interlocked.Add(ref _bytesOut, bytes);
    }
    internal void Dropped()
    {
        Interlocked.Increment(ref _dropped);
        SlowConsumerCloses.Add(1);
    }

    // The same "Duplex" meter as the connections' (Duplex.Diagnostics.DuplexMeter): one name to collect.
    private static readonly Meter Meter = new(Diagnostics.DuplexMeter.Name);
    private static readonly Counter<long> Deliveries = Meter.CreateCounter<long>("duplex.hub.deliveries", "{message}",
        "Channel messages handed to subscribers (one per subscriber).");
    private static readonly Counter<long> SlowConsumerCloses = Meter.CreateCounter<long>("duplex.hub.slow_consumer_closes", "{connection}",
        "Hub connections closed with 1013 for reading too slowly.");
}

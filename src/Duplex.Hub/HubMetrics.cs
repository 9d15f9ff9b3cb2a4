namespace Duplex.Hub;

/// <summary>Counters for /metrics.</summary>
public sealed class HubMetrics
{
    private long _connections, _messagesIn, _messagesOut, _bytesIn, _bytesOut, _dropped;

    public long Connections => Volatile.Read(ref _connections);
    public long MessagesIn => Volatile.Read(ref _messagesIn);
    public long MessagesOut => Volatile.Read(ref _messagesOut);
    public long BytesIn => Volatile.Read(ref _bytesIn);
    public long BytesOut => Volatile.Read(ref _bytesOut);
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
        Interlocked.Add(ref _messagesOut, receivers);
        Interlocked.Add(ref _bytesOut, (long)receivers * bytes);
    }
    internal void Sent(int bytes)
    {
        Interlocked.Increment(ref _messagesOut);
        Interlocked.Add(ref _bytesOut, bytes);
    }
    internal void Dropped() => Interlocked.Increment(ref _dropped);
}

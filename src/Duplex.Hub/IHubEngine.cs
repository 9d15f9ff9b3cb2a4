using System.Collections.Concurrent;

namespace Duplex.Hub;

/// <summary>
/// Where channel order and history live. The in-memory engine serves one node; an engine that
/// shares them between nodes (Redis) plugs in here.
/// </summary>
public interface IHubEngine
{
    /// <summary>Appends a message with the channel's next offset.</summary>
    HubMessage Publish(string channel, ReadOnlyMemory<byte> data, string from);

    /// <summary>
    /// The channel's position now (its epoch and latest offset) and the messages after
    /// <paramref name="since"/>, oldest first; the messages are null when some of them are no
    /// longer kept, or when <paramref name="epoch"/> is given and is not the channel's (the
    /// position is from a stream that is gone). Makes the channel's stream (and epoch) if it has none.
    /// </summary>
    HubPosition Since(string channel, long since, string? epoch = null);

    /// <summary>The last <paramref name="limit"/> kept messages of a channel with offsets below <paramref name="before"/>, oldest first.</summary>
    IReadOnlyList<HubMessage> History(string channel, int limit, long before = long.MaxValue);
}

/// <summary>Where a channel's stream stands: its epoch, its latest offset, and what was asked for (null: cannot be recovered).</summary>
public sealed record HubPosition(string Epoch, long Latest, IReadOnlyList<HubMessage>? Missed);

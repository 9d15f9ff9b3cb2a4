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
    /// The channel's latest offset and the messages after <paramref name="since"/>, oldest first,
    /// or null for the messages when some of them are no longer kept.
    /// </summary>
    (long Latest, IReadOnlyList<HubMessage>? Missed) Since(string channel, long since);

    /// <summary>The last <paramref name="limit"/> kept messages of a channel with offsets below <paramref name="before"/>, oldest first.</summary>
    IReadOnlyList<HubMessage> History(string channel, int limit, long before = long.MaxValue);
}

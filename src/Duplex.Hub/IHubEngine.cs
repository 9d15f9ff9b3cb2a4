namespace Duplex.Hub;

/// <summary>
/// Where channel order and history live, and the only thing that knows it. The in-memory
/// engine serves one node; an engine shared by several nodes (Redis) also delivers: every
/// message published on any node reaches the hub through <see cref="SubscribeAsync(string, Action{HubMessage}, CancellationToken)"/>, in
/// offset order, and the hub fans it out to its own members.
/// Every method takes a <see cref="CancellationToken"/>: cancelling stops the wait, not always the
/// work (a publish already sent to a shared store may still be stored, as when its answer is lost).
/// </summary>
public interface IHubEngine
{
    /// <summary>
    /// Stores a message with the channel's next offset; once this returns it is in history.
    /// Throws <see cref="HubEngineUnavailableException"/> when it could not be stored.
    /// </summary>
    ValueTask<HubMessage> PublishAsync(string channel, ReadOnlyMemory<byte> data, string from, CancellationToken cancellationToken = default);

    /// <summary>
    /// The channel's position now (its epoch and latest offset) and the messages after
    /// <paramref name="since"/>, oldest first; the messages are null when some of them are no
    /// longer kept, or when <paramref name="epoch"/> is given and is not the channel's (the
    /// position is from a stream that is gone). Makes the channel's stream (and epoch) if it has none.
    /// </summary>
    ValueTask<HubPosition> SinceAsync(string channel, long since, string? epoch = null, CancellationToken cancellationToken = default);

    /// <summary>The last <paramref name="limit"/> kept messages of a channel with offsets below <paramref name="before"/>, oldest first.</summary>
    ValueTask<IReadOnlyList<HubMessage>> HistoryAsync(string channel, int limit, long before = long.MaxValue, CancellationToken cancellationToken = default);

    /// <summary>
    /// True when publishes reach the hub through <see cref="SubscribeAsync(string, Action{HubMessage}, CancellationToken)"/> (from every node,
    /// this one included); false when they reach only this node and the hub fans them out as
    /// they are published (then <see cref="PublishAsync"/> must complete at once).
    /// </summary>
    bool Delivers => false;

    /// <summary>The hub has its first member in a channel: deliver the channel's messages from now on.</summary>
    ValueTask SubscribeAsync(string channel, Action<HubMessage> deliver, CancellationToken cancellationToken = default) => default;

    /// <summary>
    /// The same, with everything the engine may call back for the channel: messages, and with
    /// <see cref="SharesPresence"/> the joins and leaves of members on other nodes (not this one's:
    /// the hub announces those itself), and word that this node fell behind the channel.
    /// </summary>
    ValueTask SubscribeAsync(string channel, HubSubscriber subscriber, CancellationToken cancellationToken = default) => SubscribeAsync(channel, subscriber.Deliver, cancellationToken);

    /// <summary>True when the engine keeps presence for every node: the hub tells it of its own members' joins and leaves and asks it for the members.</summary>
    bool SharesPresence => false;

    /// <summary>A member joined the channel on this node.</summary>
    ValueTask MemberJoinedAsync(string channel, HubMember member, CancellationToken cancellationToken = default) => default;

    /// <summary>A member left the channel on this node (or disconnected).</summary>
    ValueTask MemberLeftAsync(string channel, string client, CancellationToken cancellationToken = default) => default;

    /// <summary>The channel's members on every node (only with <see cref="SharesPresence"/>).</summary>
    ValueTask<IReadOnlyList<HubMember>> PresenceAsync(string channel, CancellationToken cancellationToken = default) => throw new NotSupportedException("this engine does not keep presence");

    /// <summary>The hub's last member left the channel.</summary>
    ValueTask UnsubscribeAsync(string channel, CancellationToken cancellationToken = default) => default;

    /// <summary>The engine's own metrics for /metrics: name, type (gauge or counter), help, value.</summary>
    void WriteMetrics(Action<string, string, string, long> metric)
    {
    }
}

/// <summary>A member of a channel as presence shows it: its client id and the info it joined with (raw JSON, or null).</summary>
public sealed record HubMember(string Client, byte[]? Info);

/// <summary>What an engine that delivers calls back for one channel of a hub.</summary>
public sealed class HubSubscriber
{
    /// <summary>A message, in offset order.</summary>
    public required Action<HubMessage> Deliver { get; init; }

    /// <summary>A member joined or left on another node.</summary>
    public Action<HubPresenceChange>? PresenceChanged { get; init; }

    /// <summary>
    /// The node could not keep up with the channel (more waited than the engine may hold) and
    /// skipped what waited: the members must recover what they missed (the hub closes them as
    /// slow consumers, 1013, and they join again with <c>since</c>).
    /// </summary>
    public Action<string>? FellBehind { get; init; }
}

/// <summary>A member joined (or left) a channel on another node.</summary>
public sealed record HubPresenceChange(string Channel, bool Joined, HubMember Member);

/// <summary>Where a channel's stream stands: its epoch, its latest offset, and what was asked for (null: cannot be recovered).</summary>
public sealed record HubPosition(string Epoch, long Latest, IReadOnlyList<HubMessage>? Missed);

/// <summary>The engine's store cannot be reached (Redis down): nothing was stored.</summary>
public sealed class HubEngineUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

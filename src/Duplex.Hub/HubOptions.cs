using Duplex.Server;

namespace Duplex.Hub;

/// <summary>Limits and behaviour of a <see cref="MessageHub"/>.</summary>
public sealed class HubOptions
{
    /// <summary>Messages kept per channel for history and recovery. Default 100.</summary>
    public int HistorySize { get; set; } = 100;

    /// <summary>How long a message stays in history. Default 10 minutes.</summary>
    public TimeSpan HistoryAge { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// History kept over all channels, in bytes. At the bound the channel being published to
    /// loses its oldest messages first, then the others (they can then not be recovered with
    /// <c>since</c>). Default 256 MiB.
    /// </summary>
    public long MaxHistoryBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Channels one connection may be in. Default 100.</summary>
    public int MaxChannelsPerConnection { get; set; } = 100;

    /// <summary>Largest request, in bytes. Default 64 KiB.</summary>
    public int MaxRequestBytes { get; set; } = 64 * 1024;

    /// <summary>Outgoing messages a connection may have queued before it is closed with 1013. Default 1,000.</summary>
    public int MaxQueuedMessages { get; set; } = 1000;

    /// <summary>Outgoing bytes a connection may have queued before it is closed with 1013. Default 4 MiB.</summary>
    public long MaxQueuedBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// Channels up to this many members announce joins and leaves to everyone in them; larger
    /// ones only answer presence queries, since announcing each of N joins to N members costs N².
    /// Default 1,000.
    /// </summary>
    public int MaxPresenceEventMembers { get; set; } = 1000;

    /// <summary>Malformed requests in a row after which a connection is closed with 1008. Default 10.</summary>
    public int MaxConsecutiveErrors { get; set; } = 10;

    /// <summary>
    /// Decides who a connecting client is and what it may do; null (the default) lets everyone
    /// join and publish anywhere. Return null from the callback to refuse (the server answers 401).
    /// </summary>
    public Func<WebSocketRequest, HubIdentity?>? Authenticate { get; set; }
}

/// <summary>Who a client is, and which channels it may join and publish to.</summary>
public sealed record HubIdentity(string Subject, IReadOnlyList<string> Join, IReadOnlyList<string> Publish)
{
    /// <summary>Anyone, anywhere: the identity of a hub without authentication.</summary>
    public static HubIdentity Anonymous { get; } = new("", ["*"], ["*"]);

    /// <summary>True when one of the <see cref="Join"/> patterns matches ("*" matches all, "room.*" a prefix).</summary>
    public bool CanJoin(string channel) => Matches(Join, channel);

    /// <summary>True when one of the <see cref="Publish"/> patterns matches.</summary>
    public bool CanPublish(string channel) => Matches(Publish, channel);

    // "*" is any channel, "prefix*" any that starts so, anything else exactly that channel.
    private static bool Matches(IReadOnlyList<string> patterns, string channel)
    {
        foreach (var pattern in patterns)
        {
            if (pattern == "*" || pattern == channel
                || (pattern.EndsWith('*') && channel.StartsWith(pattern[..^1], StringComparison.Ordinal)))
                return true;
        }
        return false;
    }
}

namespace Duplex.Hub.Redis;

/// <summary>How a <see cref="RedisHubEngine"/> reaches Redis and how much history it keeps there.</summary>
public sealed class RedisHubOptions
{
    /// <summary>
    /// Where Redis is: <c>HOST:PORT</c>, or any StackExchange.Redis configuration string
    /// (several endpoints for a cluster, <c>ssl=true</c>, …).
    /// </summary>
    public string Configuration { get; set; } = "127.0.0.1:6379";

    /// <summary>Redis AUTH password (overrides one in <see cref="Configuration"/>).</summary>
    public string? Password { get; set; }

    /// <summary>This node's name in Redis (CLIENT LIST) and in the log. Default: host name and process id.</summary>
    public string? NodeId { get; set; }

    /// <summary>Messages kept per channel for recovery (the hub's history size).</summary>
    public int HistorySize { get; set; } = 100;

    /// <summary>How long they are kept.</summary>
    public TimeSpan HistoryAge { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long a quiet channel's position (epoch and latest offset) outlives its last use, so
    /// that clients coming back after its history expired are told <c>recovered: false</c> in the
    /// same epoch rather than a new one. At least <see cref="HistoryAge"/>.
    /// </summary>
    public TimeSpan PositionTtl { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// How long a member stays in presence after its node last said it is there (each node says
    /// so every third of this): members of a node that died leave presence within this time, and
    /// the other nodes announce them as left.
    /// </summary>
    public TimeSpan PresenceTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Messages of one channel that may wait on this node to be handed to the hub. A node that
    /// falls further behind (a channel published to faster than it can fan out) drops what waits
    /// and closes the channel's members with 1013; they join again with <c>since</c> and get the
    /// messages from the stream. This bounds the node's memory whatever other nodes publish.
    /// </summary>
    public int MaxPendingMessages { get; set; } = 1_000;

    /// <summary>Prefix of every key and pub/sub channel, so that several hubs can share one Redis.</summary>
    public string KeyPrefix { get; set; } = "duplex";

    /// <summary>How long a Redis command may take before the publish or join fails as unavailable.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Sharded pub/sub (SPUBLISH/SSUBSCRIBE): null picks it when every Redis server is 7.0 or
    /// newer. Every node sharing a Redis must make the same choice.
    /// </summary>
    public bool? ShardedPubSub { get; set; }

    /// <summary>Where connection changes and lost messages are reported (one line each).</summary>
    public Action<string>? Log { get; set; }
}

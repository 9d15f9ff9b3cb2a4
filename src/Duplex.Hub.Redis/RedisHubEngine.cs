using System.Globalization;
using System.Text;
using Duplex;
using StackExchange.Redis;

namespace Duplex.Hub.Redis;

/// <summary>
/// A hub engine shared by every node connected to one Redis: per channel a stream (history) and
/// a meta hash (epoch, latest offset) changed together by one Lua script, and a pub/sub channel
/// that carries each message to the nodes with members in it.
/// </summary>
/// <remarks>
/// A node subscribes to a channel only while its hub has members there, and hands each message
/// to the hub once, in offset order: what pub/sub skipped (a reconnect, a message published while
/// the subscription was being made) is read back from the stream before anything newer goes on.
/// After Redis comes back, every subscribed channel is read from the last offset delivered, so
/// members see no gap. While Redis cannot be reached, publishes and joins fail with
/// <see cref="HubEngineUnavailableException"/> at once (never queued to be sent later). A reply
/// that times out after the command was sent may still have stored the message.
/// One engine serves one hub.
/// </remarks>
public sealed class RedisHubEngine : IHubEngine, IAsyncDisposable
{
    private readonly ConnectionMultiplexer _redis;
    private readonly IDatabase _db;
    private readonly ISubscriber _bus;
    private readonly RedisHubOptions _options;
    private readonly string _nodeId;
    private readonly Dictionary<string, Subscription> _subscriptions = new(StringComparer.Ordinal); // guarded by lock (_subscriptions)
    private bool? _sharded;
    private long _lostMessages, _catchUps, _fellBehind;
    // This engine among every node's (node ids may repeat): its own presence events come back to it and are skipped.
    private readonly string _instance = InMemoryHubEngine.NewEpoch();
    // This node's members per channel, whose presence it keeps alive in Redis; guarded by lock (_present).
    private readonly Dictionary<string, Dictionary<string, byte[]?>> _present = new(StringComparer.Ordinal);
    private readonly ITimer _presenceTimer;

    // One channel this node listens to, shared by the hub's subscribe calls.
    private sealed class Subscription(string channel, HubSubscriber subscriber)
    {
        public readonly string Channel = channel;
        public readonly HubSubscriber Subscriber = subscriber;
        public int Holders;                // SubscribeAsync calls not yet undone; under lock (_subscriptions)
        public Task Ready = Task.CompletedTask;
        public ChannelMessageQueue? Queue;
        // Epoch and Last are guarded by Gate: the epoch and offset of the last message handed to the
        // hub (or covered by the position read when subscribing). Offsets at or below it are not handed again.
        public readonly SemaphoreSlim Gate = new(1, 1);
        public string Epoch = "";
        public long Last;
    }

    private RedisHubEngine(ConnectionMultiplexer redis, RedisHubOptions options, string nodeId)
    {
        _redis = redis;
        _options = options;
        _nodeId = nodeId;
        _db = redis.GetDatabase();
        _bus = redis.GetSubscriber();
        _sharded = options.ShardedPubSub;
        var every = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(100).Ticks, options.PresenceTtl.Ticks / 3));
        _presenceTimer = TimeProvider.System.CreateTimer(_ => _ = KeepPresentAsync(), null, every, every);
        redis.ConnectionFailed += (_, e) => Log($"redis connection lost ({e.ConnectionType}, {e.FailureType}): publishes fail as unavailable until it is back");
        redis.ConnectionRestored += (_, e) =>
        {
            // Only the pub/sub connection carries messages: while it was away some may have been
            // missed. (Each restored connection used to start its own catch-up of every channel.)
            if (e.ConnectionType != ConnectionType.Subscription)
            {
                Log($"redis connection restored ({e.ConnectionType})");
                return;
            }
            Log($"redis connection restored ({e.ConnectionType}): reading what each channel missed");
            CatchUpAll();
        };
    }

    /// <summary>
    /// Connects to Redis. Does not fail when Redis is down: the connection is retried with
    /// backoff meanwhile, and publishes fail as unavailable until it is up.
    /// </summary>
    public static async Task<RedisHubEngine> ConnectAsync(RedisHubOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(options.HistorySize);
        var config = ConfigurationOptions.Parse(options.Configuration);
        string nodeId = options.NodeId ?? $"{Environment.MachineName}-{Environment.ProcessId}";
        config.ClientName = "duplex-" + nodeId;
        if (options.Password is { } password)
            config.Password = password;
        config.AbortOnConnectFail = false;                      // start anyway, keep trying
        config.BacklogPolicy = BacklogPolicy.FailFast;          // never send a publish later than its error
        config.ReconnectRetryPolicy = new ExponentialRetry(250, 5_000);
        config.ConnectTimeout = 3_000;
        config.AsyncTimeout = config.SyncTimeout = (int)options.CommandTimeout.TotalMilliseconds;
        cancellationToken.ThrowIfCancellationRequested();
        var connecting = ConnectionMultiplexer.ConnectAsync(config);
        ConnectionMultiplexer redis;
        try
        {
            redis = await connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Given up on: the connection it still makes is closed, not left retrying forever.
            _ = connecting.ContinueWith(static t => t.Result.Dispose(), CancellationToken.None,
                TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            throw;
        }
        var engine = new RedisHubEngine(redis, options, nodeId);
        engine.Log(redis.IsConnected ? $"redis connected at {options.Configuration} as node {nodeId}" : $"redis at {options.Configuration} cannot be reached yet: retrying");
        return engine;
    }

    /// <summary>True while commands can reach Redis.</summary>
    public bool IsConnected => _redis.IsConnected;

    /// <summary>Messages that pub/sub skipped and the stream no longer had (history too short for the outage).</summary>
    public long LostMessages => Interlocked.Read(ref _lostMessages);

    bool IHubEngine.Delivers => true;

    void IHubEngine.WriteMetrics(Action<string, string, string, long> metric)
    {
        metric("duplex_redis_connected", "gauge", "1 while the hub's Redis can be reached.", _redis.IsConnected ? 1 : 0);
        int subscriptions;
        lock (_subscriptions)
            subscriptions = _subscriptions.Count;
        metric("duplex_redis_subscriptions", "gauge", "Channels this node listens to in Redis.", subscriptions);
        metric("duplex_redis_catch_ups_total", "counter", "Times a channel was read back from its stream (after a gap or a reconnect).", Interlocked.Read(ref _catchUps));
        metric("duplex_redis_lost_messages_total", "counter", "Messages missed by pub/sub and gone from the stream.", LostMessages);
        metric("duplex_redis_fell_behind_total", "counter", "Times this node fell behind a channel and closed its members to recover (1013).", Interlocked.Read(ref _fellBehind));
    }

    /// <inheritdoc/>
    public async ValueTask<HubMessage> PublishAsync(string channel, ReadOnlyMemory<byte> data, string from, CancellationToken cancellationToken = default)
    {
        var result = await RunAsync(RedisScripts.Publish, channel,
            [InMemoryHubEngine.NewEpoch(), data, from, _options.HistorySize, AgeMs, PositionTtlMs, Name(channel, "events"), Sharded() ? "1" : "0"], cancellationToken).ConfigureAwait(false);
        var answer = (RedisResult[])result!;
        var time = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse((string)answer[2]!, CultureInfo.InvariantCulture));
        return HubMessage.CreateFramed(channel, (string)answer[0]!, (long)answer[1], data, from, time);
    }

    /// <inheritdoc/>
    public async ValueTask<HubPosition> SinceAsync(string channel, long since, string? epoch = null, CancellationToken cancellationToken = default)
    {
        var result = await RunAsync(RedisScripts.Since, channel,
            [InMemoryHubEngine.NewEpoch(), since, _options.HistorySize, AgeMs, PositionTtlMs, epoch ?? ""], cancellationToken).ConfigureAwait(false);
        var answer = (RedisResult[])result!;
        string current = (string)answer[0]!;
        long top = (long)answer[1];
        if (answer.Length < 3)
            return new(current, top, since == top && (epoch is null || epoch == current) ? [] : null);
        var missed = Messages(channel, current, (RedisResult[])answer[2]!);
        // Whole and in order, or not at all: trimmed or expired entries leave holes.
        for (int i = 0; i < missed.Count; i++)
        {
            if (missed[i].Offset != since + 1 + i)
                return new(current, top, null);
        }
        return new(current, top, missed.Count == top - since ? missed : null);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<HubMessage>> HistoryAsync(string channel, int limit, long before = long.MaxValue, CancellationToken cancellationToken = default)
    {
        limit = Math.Min(limit, _options.HistorySize);
        if (limit <= 0 || before <= 1)
            return [];
        string last = before == long.MaxValue ? "+" : $"{before - 1}-0";
        var result = await RunAsync(RedisScripts.History, channel, [limit, last, AgeMs, _options.HistorySize], cancellationToken).ConfigureAwait(false);
        var answer = (RedisResult[])result!;
        if (answer.Length < 2)
            return [];
        var messages = Messages(channel, (string)answer[0]!, (RedisResult[])answer[1]!);
        messages.Reverse();
        return messages;
    }

    /// <inheritdoc/>
    public ValueTask SubscribeAsync(string channel, Action<HubMessage> deliver, CancellationToken cancellationToken = default) =>
        SubscribeAsync(channel, new HubSubscriber { Deliver = deliver }, cancellationToken);

    /// <inheritdoc/>
    public async ValueTask SubscribeAsync(string channel, HubSubscriber subscriber, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Subscription subscription;
        lock (_subscriptions)
        {
            if (!_subscriptions.TryGetValue(channel, out subscription!))
            {
                subscription = new Subscription(channel, subscriber);
                _subscriptions[channel] = subscription;
                subscription.Ready = StartAsync(subscription);
            }
            subscription.Holders++;
        }
        try
        {
            await subscription.Ready.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await ReleaseAsync(subscription).ConfigureAwait(false); // given up (or failed): this holder lets go
            throw;
        }
    }

    /// <inheritdoc/>
    public ValueTask UnsubscribeAsync(string channel, CancellationToken cancellationToken = default)
    {
        // Not cancelled: letting go of a channel is cleanup, and runs to its end.
        Subscription? subscription;
        lock (_subscriptions)
            _subscriptions.TryGetValue(channel, out subscription);
        return subscription is null ? default : new(ReleaseAsync(subscription));
    }

    // The last holder out stops listening.
    private async Task ReleaseAsync(Subscription subscription)
    {
        lock (_subscriptions)
        {
            if (--subscription.Holders > 0)
                return;
            if (_subscriptions.TryGetValue(subscription.Channel, out var current) && current == subscription)
                _subscriptions.Remove(subscription.Channel);
        }
        try
        {
            await subscription.Ready.ConfigureAwait(false);
        }
        catch (HubEngineUnavailableException)
        {
        }
        if (subscription.Queue is { } queue)
        {
            try
            {
                await queue.UnsubscribeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (IsRedisFailure(e))
            {
                // Redis is away: the subscription is gone from this node anyway, and a message of a
                // channel the hub no longer has is ignored.
            }
        }
    }

    // Listens, then reads the position: what is published in between is covered by the position
    // (offsets at or below it are skipped), what comes after it is handed on.
    private async Task StartAsync(Subscription subscription)
    {
        await subscription.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            subscription.Queue = await _bus.SubscribeAsync(Events(subscription.Channel)).ConfigureAwait(false);
            _ = ReadAsync(subscription, subscription.Queue);
            var position = await SinceAsync(subscription.Channel, long.MaxValue).ConfigureAwait(false);
            subscription.Epoch = position.Epoch;
            subscription.Last = position.Latest;
        }
        catch (Exception e) when (IsRedisFailure(e))
        {
            if (subscription.Queue is { } queue)
                _ = queue.UnsubscribeAsync().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
            throw Unavailable(e);
        }
        finally
        {
            subscription.Gate.Release();
        }
    }

    // Pub/sub's messages in the order Redis sent them, until unsubscribed. What has arrived is
    // taken in batches, and the messages that follow the last one handed on are handed on in one
    // SendBatch: each member's connection is written once per batch, not once per message. The
    // queue is StackExchange.Redis's and unbounded: past MaxPendingMessages this node has fallen
    // behind, and what waits is dropped (the members recover it from the stream).
    private async Task ReadAsync(Subscription subscription, ChannelMessageQueue queue)
    {
        const int BatchSize = 64;
        var batch = new List<ChannelMessage>(BatchSize);
        try
        {
            while (true)
            {
                batch.Add(await queue.ReadAsync().ConfigureAwait(false));
                while (batch.Count < BatchSize && queue.TryRead(out var next))
                    batch.Add(next);
                try
                {
                    if (queue.TryGetCount(out int waiting) && waiting > _options.MaxPendingMessages)
                    {
                        await FallBehindAsync(subscription, queue, waiting).ConfigureAwait(false);
                        continue;
                    }
                    int handed = 0;
                    using (SendBatch.Begin())
                    {
                        while (handed < batch.Count && TryHandInOrder(subscription, batch[handed]))
                            handed++;
                    }
                    for (; handed < batch.Count; handed++)
                        await OnMessageAsync(subscription, batch[handed]).ConfigureAwait(false); // a gap, or the gate is busy
                }
                catch (Exception e) when (e is not System.Threading.Channels.ChannelClosedException)
                {
                    Log($"channel {subscription.Channel}: a message could not be handed on ({e.GetType().Name}: {e.Message})"); // the next ones still are
                }
                finally
                {
                    batch.Clear();
                }
            }
        }
        catch (System.Threading.Channels.ChannelClosedException)
        {
            // unsubscribed
        }
    }

    // Without waiting: hands on a presence change, or the message that follows the last one handed
    // on (or skips one covered already). False when it takes a wait: the gate is held (a catch-up
    // runs) or the stream must fill a gap; OnMessageAsync then does it.
    private bool TryHandInOrder(Subscription subscription, ChannelMessage received)
    {
        if (TryHandPresence(subscription, received))
            return true;
        if (!TryParse(subscription.Channel, received.Message, out var message) || !subscription.Gate.Wait(0))
            return false;
        try
        {
            if (message.Epoch != subscription.Epoch || message.Offset > subscription.Last + 1)
                return false;
            if (message.Offset == subscription.Last + 1)
                Hand(subscription, message);
            return true;
        }
        finally
        {
            subscription.Gate.Release();
        }
    }

    private async Task FallBehindAsync(Subscription subscription, ChannelMessageQueue queue, int waiting)
    {
        while (queue.TryRead(out _))
        {
        }
        Interlocked.Increment(ref _fellBehind);
        Log($"channel {subscription.Channel}: {waiting} messages were waiting on this node: it fell behind; they are dropped and the members closed with 1013 to recover them with since");
        await subscription.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            var position = await SinceAsync(subscription.Channel, long.MaxValue).ConfigureAwait(false);
            subscription.Epoch = position.Epoch;
            subscription.Last = position.Latest;
        }
        catch (HubEngineUnavailableException)
        {
            // the catch-up after the reconnect moves the position on
        }
        finally
        {
            subscription.Gate.Release();
        }
        subscription.Subscriber.FellBehind?.Invoke(subscription.Channel);
    }

    // A presence change (another node's join or leave) goes to the subscriber; true when it was one.
    private bool TryHandPresence(Subscription subscription, ChannelMessage received)
    {
        if (!TryParsePresence(subscription.Channel, received.Message, out var change))
            return false;
        if (change is not null)
            subscription.Subscriber.PresenceChanged?.Invoke(change);
        return true;
    }

    private async Task OnMessageAsync(Subscription subscription, ChannelMessage received)
    {
        if (TryHandPresence(subscription, received))
            return;
        if (!TryParse(subscription.Channel, received.Message, out var message))
        {
            Log($"channel {subscription.Channel}: a pub/sub message that is not Duplex's was ignored");
            return;
        }
        await subscription.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (message.Epoch == subscription.Epoch && message.Offset <= subscription.Last)
                return; // covered already
            if (message.Epoch == subscription.Epoch && message.Offset == subscription.Last + 1)
            {
                Hand(subscription, message);
                return;
            }
            // A gap, or another epoch: the stream says what came in between (this message included).
            await CatchUpAsync(subscription).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HubEngineUnavailableException || IsRedisFailure(e))
        {
            // The stream cannot be read now; the catch-up after the reconnect fills the gap.
            Log($"channel {subscription.Channel}: cannot read the stream to fill a gap ({e.Message})");
        }
        finally
        {
            subscription.Gate.Release();
        }
    }

    // Under the subscription's gate: hands on everything after Last, up to the stream's top.
    private async Task CatchUpAsync(Subscription subscription)
    {
        Interlocked.Increment(ref _catchUps);
        var position = await SinceAsync(subscription.Channel, subscription.Last, subscription.Epoch).ConfigureAwait(false);
        if (position.Epoch != subscription.Epoch)
        {
            // The stream was made again (Redis lost it, or it expired): everything in the new one is new.
            Log($"channel {subscription.Channel}: its stream has a new epoch ({subscription.Epoch} → {position.Epoch})");
            subscription.Epoch = position.Epoch;
            subscription.Last = 0;
            position = position.Latest == 0 ? position with { Missed = [] } : await SinceAsync(subscription.Channel, 0, position.Epoch).ConfigureAwait(false);
        }
        if (position.Missed is null)
        {
            long lost = position.Latest - subscription.Last;
            Interlocked.Add(ref _lostMessages, lost);
            Log($"channel {subscription.Channel}: {lost} messages missed by pub/sub are no longer in the stream; members go on from offset {position.Latest}");
            subscription.Last = position.Latest;
            return;
        }
        foreach (var message in position.Missed)
            Hand(subscription, message);
    }

    private void CatchUpAll()
    {
        Subscription[] all;
        lock (_subscriptions)
            all = [.. _subscriptions.Values];
        foreach (var subscription in all)
            _ = CatchUpLaterAsync(subscription);
    }

    // After a reconnect: at once, and again a second later for what was published before the
    // re-subscription reached Redis.
    private async Task CatchUpLaterAsync(Subscription subscription)
    {
        for (int attempt = 0; attempt < 2; attempt++)
        {
            if (attempt > 0)
                await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            try
            {
                await subscription.Ready.ConfigureAwait(false);
                await subscription.Gate.WaitAsync().ConfigureAwait(false);
                try
                {
                    await CatchUpAsync(subscription).ConfigureAwait(false);
                }
                finally
                {
                    subscription.Gate.Release();
                }
            }
            catch (Exception e) when (e is HubEngineUnavailableException || IsRedisFailure(e))
            {
                Log($"channel {subscription.Channel}: catching up after the reconnect failed ({e.Message})");
            }
        }
    }

    // Under the gate.
    private static void Hand(Subscription subscription, HubMessage message)
    {
        subscription.Last = message.Offset;
        subscription.Subscriber.Deliver(message);
    }

    private Task<RedisResult> RunAsync(string script, string channel, RedisValue[] values, CancellationToken cancellationToken = default) =>
        RunAsync(script, [Name(channel, "meta"), Name(channel, "stream")], values, cancellationToken);

    // A cancelled token stops the wait for Redis's answer; a script already sent still runs there.
    private async Task<RedisResult> RunAsync(string script, RedisKey[] keys, RedisValue[] values, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var answer = _db.ScriptEvaluateAsync(script, keys, values);
        try
        {
            return await (cancellationToken.CanBeCanceled ? answer.WaitAsync(cancellationToken) : answer).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!answer.IsCompleted)
        {
            // Given up on: its failure, if it fails, is nobody's to see.
            _ = answer.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
        catch (Exception e) when (IsRedisFailure(e))
        {
            throw Unavailable(e);
        }
    }

    // What StackExchange.Redis throws when Redis is away or slow (a timeout is not a RedisException).
    private static bool IsRedisFailure(Exception e) => e is RedisException or TimeoutException;

    private static HubEngineUnavailableException Unavailable(Exception e) =>
        new(e is RedisTimeoutException ? "redis did not answer in time" : "redis cannot be reached", e);

    // Sharded pub/sub when every server has it (7.0+), decided once connected.
    private bool Sharded()
    {
        if (_sharded is { } known)
            return known;
        var servers = _redis.GetServers();
        if (servers.Length == 0 || servers.Any(s => !s.IsConnected))
            throw new HubEngineUnavailableException("redis cannot be reached");
        _sharded = servers.All(s => s.Version >= new Version(7, 0));
        return _sharded.Value;
    }

    private RedisChannel Events(string channel)
    {
        string name = Name(channel, "events");
        return Sharded() ? RedisChannel.Sharded(name) : RedisChannel.Literal(name);
    }

    // prefix:{channel}:part — the braces are a Redis Cluster hash tag, so a channel's keys and
    // its pub/sub channel live on one shard; braces in a name are escaped to keep the tag whole.
    private string Name(string channel, string part)
    {
        string tag = channel.Contains('{') || channel.Contains('}') || channel.Contains('%')
            ? channel.Replace("%", "%25", StringComparison.Ordinal).Replace("{", "%7B", StringComparison.Ordinal).Replace("}", "%7D", StringComparison.Ordinal)
            : channel;
        return $"{_options.KeyPrefix}:{{{tag}}}:{part}";
    }

    private long AgeMs => (long)_options.HistoryAge.TotalMilliseconds;

    private long PositionTtlMs => (long)Math.Max(_options.PositionTtl.TotalMilliseconds, _options.HistoryAge.TotalMilliseconds);

    // Stream entries: [id "offset-0", [d, data, f, from, t, ms]].
    private static List<HubMessage> Messages(string channel, string epoch, RedisResult[] entries)
    {
        var messages = new List<HubMessage>(entries.Length);
        foreach (var entry in entries)
        {
            var parts = (RedisResult[])entry!;
            string id = (string)parts[0]!;
            var fields = (RedisResult[])parts[1]!;
            long offset = long.Parse(id.AsSpan(0, id.IndexOf('-', StringComparison.Ordinal)), CultureInfo.InvariantCulture);
            byte[] data = (byte[])fields[1]!;
            string from = (string)fields[3]!;
            var time = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse((string)fields[5]!, CultureInfo.InvariantCulture));
            messages.Add(HubMessage.CreateFramed(channel, epoch, offset, data, from, time));
        }
        return messages;
    }

    // A pub/sub payload: epoch \n offset \n time ms \n from \n data.
    private static bool TryParse(string channel, RedisValue payload, out HubMessage message)
    {
        message = null!;
        ReadOnlyMemory<byte> bytes = (byte[]?)payload ?? [];
        var fields = new Range[5];
        int start = 0;
        for (int i = 0; i < 4; i++)
        {
            int end = bytes.Span[start..].IndexOf((byte)'\n');
            if (end < 0)
                return false;
            fields[i] = start..(start + end);
            start += end + 1;
        }
        fields[4] = start..;
        var span = bytes.Span;
        if (!long.TryParse(span[fields[1]], NumberStyles.None, CultureInfo.InvariantCulture, out long offset)
            || !long.TryParse(span[fields[2]], NumberStyles.None, CultureInfo.InvariantCulture, out long ms))
            return false;
        message = HubMessage.CreateFramed(channel, Encoding.UTF8.GetString(span[fields[0]]), offset, bytes[fields[4]],
            Encoding.UTF8.GetString(span[fields[3]]), DateTimeOffset.FromUnixTimeMilliseconds(ms));
        return true;
    }

    bool IHubEngine.SharesPresence => true;

    /// <inheritdoc/>
    public async ValueTask MemberJoinedAsync(string channel, HubMember member, CancellationToken cancellationToken = default)
    {
        lock (_present)
        {
            if (!_present.TryGetValue(channel, out var members))
                _present[channel] = members = new(StringComparer.Ordinal);
            members[member.Client] = member.Info;
        }
        string info = member.Info is null ? "" : Encoding.UTF8.GetString(member.Info);
        try
        {
            await RunPresenceAsync(RedisScripts.Present, channel,
                [Name(channel, "events"), Sharded() ? "1" : "0", PresenceTtlMs, PresenceTtlMs * 2, member.Client, info,
                 $"!+\n{_instance}\n{member.Client}\n{info}"], cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HubEngineUnavailableException or OperationCanceledException)
        {
            Forget(channel, member.Client); // the join fails: the member must not be kept alive
            throw;
        }
    }

    private void Forget(string channel, string client)
    {
        lock (_present)
        {
            if (_present.TryGetValue(channel, out var members) && members.Remove(client) && members.Count == 0)
                _present.Remove(channel);
        }
    }

    /// <inheritdoc/>
    public async ValueTask MemberLeftAsync(string channel, string client, CancellationToken cancellationToken = default)
    {
        Forget(channel, client);
        await RunPresenceAsync(RedisScripts.Absent, channel,
            [Name(channel, "events"), Sharded() ? "1" : "0", client, $"!-\n{_instance}\n{client}\n"], cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<HubMember>> PresenceAsync(string channel, CancellationToken cancellationToken = default)
    {
        var result = (RedisResult[])(await RunPresenceAsync(RedisScripts.Members, channel, [Name(channel, "events"), Sharded() ? "1" : "0"], cancellationToken).ConfigureAwait(false))!;
        var members = new List<HubMember>(result.Length / 2);
        for (int i = 0; i + 1 < result.Length; i += 2)
        {
            byte[] info = (byte[])result[i + 1]!;
            members.Add(new HubMember((string)result[i]!, info.Length == 0 ? null : info));
        }
        return members;
    }

    // Every third of the presence TTL: this node's members are still here (and the expired of
    // those channels are swept, which announces them as left).
    private async Task KeepPresentAsync()
    {
        List<(string Channel, RedisValue[] Args)> work = [];
        lock (_present)
        {
            foreach (var (channel, members) in _present)
            {
                var args = new List<RedisValue> { Name(channel, "events"), _sharded == true ? "1" : "0", PresenceTtlMs, PresenceTtlMs * 2 };
                foreach (var (client, info) in members)
                {
                    args.Add(client);
                    args.Add(info is null ? "" : Encoding.UTF8.GetString(info));
                }
                work.Add((channel, [.. args]));
            }
        }
        if (_sharded is null)
            return; // not connected yet: nothing was recorded
        foreach (var (channel, args) in work)
        {
            try
            {
                await RunPresenceAsync(RedisScripts.Present, channel, args).ConfigureAwait(false);
            }
            catch (HubEngineUnavailableException)
            {
                return; // Redis is away; the next round tries again
            }
        }
    }

    private Task<RedisResult> RunPresenceAsync(string script, string channel, RedisValue[] values, CancellationToken cancellationToken = default) =>
        RunAsync(script, [Name(channel, "members"), Name(channel, "alive")], values, cancellationToken);

    // A presence payload: "!+" or "!-", then lines: engine instance, client, info. True when it
    // is one; the change is null when it came from this engine (the hub announced it already).
    private bool TryParsePresence(string channel, RedisValue payload, out HubPresenceChange? change)
    {
        change = null;
        byte[]? bytes = (byte[]?)payload;
        if (bytes is null || bytes.Length < 2 || bytes[0] != (byte)'!')
            return false;
        var lines = Encoding.UTF8.GetString(bytes).Split('\n', 4);
        if (lines.Length < 4 || lines[1] == _instance)
            return true;
        change = new HubPresenceChange(channel, lines[0] == "!+", new HubMember(lines[2], lines[3].Length == 0 ? null : Encoding.UTF8.GetBytes(lines[3])));
        return true;
    }

    private long PresenceTtlMs => (long)_options.PresenceTtl.TotalMilliseconds;

    private void Log(string line) => _options.Log?.Invoke($"hub[{_nodeId}]: {line}");

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _presenceTimer.DisposeAsync().ConfigureAwait(false);
        await _redis.CloseAsync().ConfigureAwait(false);
    }
}

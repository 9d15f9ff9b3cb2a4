using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Duplex.Protocol;
using Duplex.Server;

namespace Duplex.Hub;

/// <summary>
/// Pub/sub over WebSocket connections: named channels, per-channel ordered offsets, history and
/// recovery with <c>since</c>, presence, acknowledgements, and bounded outgoing queues (a slow
/// subscriber is closed with 1013 and recovers on reconnect). The wire protocol is in
/// docs/hub-protocol.md. Map it with <c>server.Map("/hub", hub.HandleAsync, hub.RouteOptions)</c>.
/// </summary>
public sealed partial class MessageHub
{
    private readonly HubOptions _options;
    private readonly IHubEngine _engine;
    private readonly ConcurrentDictionary<string, Channel> _channels = new(StringComparer.Ordinal);
    private readonly HubSubscriber _subscriber;

    // A channel with members on this node. Everything is guarded by lock (this); a removed
    // channel is no longer in _channels, and whoever locks one and finds it removed looks again.
    internal sealed class Channel
    {
        // Subscribers and their presence info (raw JSON, or null).
        public readonly Dictionary<HubSession, byte[]?> Members = [];
        // Members still being sent what they missed: what arrives meanwhile waits here, in order.
        public readonly Dictionary<HubSession, CatchUp> CatchingUp = [];
        // The engine's subscription (engines that deliver): set once, by the first join.
        public Task? Subscribed;
        public bool Removed;
    }

    internal sealed class CatchUp
    {
        public readonly List<HubMessage> Waiting = [];
        public bool Overflowed; // more arrived than an outbox may hold: the member is dropped (1013)
    }

    /// <summary>A hub with these settings, on <paramref name="engine"/> (the in-memory engine when null; a RedisHubEngine to share it between nodes).</summary>
    public MessageHub(HubOptions? options = null, IHubEngine? engine = null)
    {
        _options = options ?? new HubOptions();
        _engine = engine ?? new InMemoryHubEngine(_options.HistorySize, _options.HistoryAge, maxBytes: _options.MaxHistoryBytes);
        _subscriber = new HubSubscriber { Deliver = Deliver, PresenceChanged = PresenceChanged, FellBehind = FellBehind };
        if (_engine is InMemoryHubEngine { InUse: null } memory)
            memory.InUse = channel => _channels.ContainsKey(channel); // members keep their channel's epoch
    }

    /// <summary>The settings the hub was made with.</summary>
    public HubOptions Options => _options;

    /// <summary>Counters of connections, messages, bytes and slow-consumer drops.</summary>
    public HubMetrics Metrics { get; } = new();

    /// <summary>Route options that run <see cref="HubOptions.Authenticate"/> before the upgrade.</summary>
    public WebSocketRouteOptions RouteOptions => new()
    {
        Authorize = request =>
        {
            if (_options.Authenticate is not { } authenticate)
                return ValueTask.FromResult<HttpRejection?>(null);
            var identity = authenticate(request);
            if (identity is null)
                return ValueTask.FromResult<HttpRejection?>(new HttpRejection(401, "a valid token is needed",
                    [new("WWW-Authenticate", "Bearer")]));
            request.Items[nameof(HubIdentity)] = identity;
            return ValueTask.FromResult<HttpRejection?>(null);
        },
    };

    /// <summary>The connection handler: serves one client until it goes.</summary>
    public async Task HandleAsync(WebSocketConnection connection, WebSocketRequest request, CancellationToken stopping)
    {
        var identity = request.Items.TryGetValue(nameof(HubIdentity), out var found) && found is HubIdentity known
            ? known
            : _options.Authenticate is null ? HubIdentity.Anonymous : null;
        if (identity is null)
        {
            await connection.CloseAsync(CloseStatus.PolicyViolation, "not authenticated").ConfigureAwait(false);
            return;
        }
        await HandleAsync(connection, identity, stopping).ConfigureAwait(false);
    }

    /// <summary>
    /// Serves one client whose identity the host has established already (ASP.NET Core's
    /// authentication, say) until it goes.
    /// </summary>
    public async Task HandleAsync(WebSocketConnection connection, HubIdentity identity, CancellationToken stopping = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(identity);
        var session = new HubSession(this, connection, NewClientId(), identity);
        Metrics.ConnectionOpened();
        try
        {
            await session.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            foreach (var channel in session.Channels.ToList())
                Leave(session, channel);
            Metrics.ConnectionClosed();
        }
    }

    private static string NewClientId()
    {
        Span<byte> bytes = stackalloc byte[9];
        RandomNumberGenerator.Fill(bytes);
        return Convert.ToBase64String(bytes).Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Number of channels with at least one member on this node.</summary>
    public int ChannelCount => _channels.Count;

    // The channel's state, subscribed with the engine (engines that deliver) by its first join.
    private Channel Enter(string channel, out Task subscribed)
    {
        while (true)
        {
            var state = _channels.GetOrAdd(channel, static _ => new Channel());
            lock (state)
            {
                if (state.Removed)
                    continue;
                state.Subscribed ??= _engine.Delivers ? _engine.SubscribeAsync(channel, _subscriber).AsTask() : Task.CompletedTask;
                subscribed = state.Subscribed;
                return state;
            }
        }
    }

    // Joining: the member is added first (catching up: what is published meanwhile waits for it),
    // then the engine is asked what was missed, then the missed and the waiting go out in order,
    // with no message twice and none between the replay and the live stream.
    internal async Task JoinAsync(HubSession session, string channel, long? since, string? epoch, byte[]? info, string? id)
    {
        var catchUp = new CatchUp();
        var state = Enter(channel, out var subscribed);
        bool wasMember;
        lock (state)
        {
            wasMember = state.Members.ContainsKey(session);
            state.Members[session] = info;
            state.CatchingUp[session] = catchUp;
            session.Channels.Add(channel);
        }
        HubPosition position;
        try
        {
            await subscribed.ConfigureAwait(false);
            position = await _engine.SinceAsync(channel, since ?? long.MaxValue, since is null ? null : epoch).ConfigureAwait(false);
            if (!wasMember && _engine.SharesPresence)
                await _engine.MemberJoinedAsync(channel, new HubMember(session.ClientId, info)).ConfigureAwait(false);
        }
        catch (HubEngineUnavailableException e)
        {
            lock (state)
            {
                state.CatchingUp.Remove(session);
                if (!wasMember)
                    RemoveMember(state, channel, session);
                if (subscribed.IsFaulted && !state.Removed)
                    Remove(state, channel); // the next join subscribes again
            }
            session.Refuse(id, "unavailable", e.Message);
            return;
        }
        List<HubSession> others;
        lock (state)
        {
            if (!state.CatchingUp.Remove(session))
                return; // it left meanwhile
            var missed = since is null ? null : position.Missed;
            session.Send(Json.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("type", "ok");
                WriteId(w, id);
                w.WriteString("channel", channel);
                w.WriteString("epoch", position.Epoch);
                w.WriteNumber("offset", position.Latest);
                if (since is not null)
                {
                    w.WriteBoolean("recovered", missed is not null);
                    w.WriteNumber("missed", missed?.Count ?? 0);
                }
                w.WriteEndObject();
            }));
            if (missed is not null)
            {
                foreach (var message in missed)
                    session.Send(message.Event, replay: true);
            }
            // What arrived while catching up: only what the answer's position does not cover.
            foreach (var message in catchUp.Waiting)
            {
                if (message.Epoch != position.Epoch || message.Offset > position.Latest)
                    session.Send(message.Event);
            }
            if (catchUp.Overflowed)
                session.DropSlow();
            others = wasMember || state.Members.Count > _options.MaxPresenceEventMembers
                ? []
                : state.Members.Keys.Where(s => s != session).ToList();
        }
        Announce(others, "joined", channel, session.ClientId, info, withInfo: true);
    }

    internal void Leave(HubSession session, string channel)
    {
        if (!_channels.TryGetValue(channel, out var state))
            return;
        List<HubSession> others;
        lock (state)
        {
            if (!state.Members.ContainsKey(session))
                return;
            RemoveMember(state, channel, session);
            others = state.Members.Count >= _options.MaxPresenceEventMembers ? [] : [.. state.Members.Keys];
        }
        Announce(others, "left", channel, session.ClientId, null, withInfo: false);
        if (_engine.SharesPresence)
            _ = ForgetMemberAsync(channel, session.ClientId);
    }

    // Leaving never waits for the engine; a leave it could not record expires there with the
    // engine's presence time-to-live.
    private async Task ForgetMemberAsync(string channel, string client)
    {
        try
        {
            await _engine.MemberLeftAsync(channel, client).ConfigureAwait(false);
        }
        catch (HubEngineUnavailableException)
        {
        }
    }

    // From an engine that delivers: this node skipped messages of the channel (it fell behind).
    // Its members recover them as any slow consumer does: closed with 1013, they join again with since.
    private void FellBehind(string channel)
    {
        if (!_channels.TryGetValue(channel, out var state))
            return;
        List<HubSession> members;
        lock (state)
            members = [.. state.Members.Keys];
        foreach (var member in members)
            member.DropSlow();
    }

    // From an engine that shares presence: a member joined or left on another node.
    private void PresenceChanged(HubPresenceChange change)
    {
        if (!_channels.TryGetValue(change.Channel, out var state))
            return;
        List<HubSession> members;
        lock (state)
            members = state.Members.Count > _options.MaxPresenceEventMembers ? [] : [.. state.Members.Keys];
        Announce(members, change.Joined ? "joined" : "left", change.Channel, change.Member.Client, change.Member.Info, withInfo: change.Joined);
    }

    // Under the state's lock. The last member out removes the channel.
    private void RemoveMember(Channel state, string channel, HubSession session)
    {
        state.Members.Remove(session);
        state.CatchingUp.Remove(session);
        session.Channels.Remove(channel);
        if (state.Members.Count == 0 && !state.Removed)
            Remove(state, channel);
    }

    // Under the state's lock.
    private void Remove(Channel state, string channel)
    {
        state.Removed = true;
        _channels.TryRemove(new KeyValuePair<string, Channel>(channel, state));
        if (state.Subscribed is { } subscribed && _engine.Delivers)
        {
            // Each subscription that was made is undone once, after it was made.
            _ = subscribed.ContinueWith(static (t, s) =>
            {
                var (engine, name) = ((IHubEngine, string))s!;
                return t.IsCompletedSuccessfully ? engine.UnsubscribeAsync(name).AsTask() : Task.CompletedTask;
            }, (_engine, channel), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).Unwrap();
        }
    }

    // A presence event (joined or left), framed once for everyone told of it.
    private static void Announce(List<HubSession> others, string type, string channel, string client, byte[]? info, bool withInfo)
    {
        if (others.Count == 0)
            return;
        var announcement = PreparedMessage.Create(Json.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WriteString("channel", channel);
            w.WriteString("client", client);
            if (withInfo)
                Json.WriteRaw(w, "info", info);
            w.WriteEndObject();
        }), MessageType.Text);
        foreach (var other in others)
            other.Send(announcement);
    }

    /// <summary>
    /// Stores a message; every member of the channel (on every node, with an engine that
    /// delivers) gets it in offset order. With the in-memory engine, offsets are given and the
    /// message fanned out under the channel's lock.
    /// </summary>
    internal async ValueTask<HubMessage> PublishAsync(HubSession session, string channel, ReadOnlyMemory<byte> data)
    {
        if (_engine.Delivers)
            return await _engine.PublishAsync(channel, data, session.ClientId).ConfigureAwait(false); // comes back through Deliver
        var state = Enter(channel, out _);
        lock (state)
        {
            var publishing = _engine.PublishAsync(channel, data, session.ClientId);
            if (!publishing.IsCompleted)
                throw new InvalidOperationException("an engine that does not deliver must publish at once (IHubEngine.Delivers)");
            var message = publishing.Result;
            FanOut(state, message);
            return message;
        }
    }

    // From an engine that delivers: a message of a channel this node subscribed to, in offset order.
    private void Deliver(HubMessage message)
    {
        if (!_channels.TryGetValue(message.Channel, out var state))
            return;
        lock (state)
            FanOut(state, message);
    }

    // Under the state's lock. The frame is built once for all members.
    private void FanOut(Channel state, HubMessage message)
    {
        var frame = message.Event;
        // A snapshot: a send that fails can end its connection on this very thread, and its
        // leaving (the lock is re-entrant) must not change the set while it is walked.
        int count = state.Members.Count;
        var members = ArrayPool<HubSession>.Shared.Rent(count);
        state.Members.Keys.CopyTo(members, 0);
        try
        {
            FanOut(state, message, frame, members.AsSpan(0, count));
        }
        finally
        {
            ArrayPool<HubSession>.Shared.Return(members, clearArray: true);
        }
        Metrics.Published(count, frame.Payload.Length);
    }

    private void FanOut(Channel state, HubMessage message, PreparedMessage frame, ReadOnlySpan<HubSession> members)
    {
        if (state.CatchingUp.Count == 0)
        {
            foreach (var member in members)
                member.Send(frame);
            return;
        }
        foreach (var member in members)
        {
            if (state.CatchingUp.TryGetValue(member, out var catchUp))
            {
                if (catchUp.Waiting.Count < _options.MaxQueuedMessages)
                    catchUp.Waiting.Add(message);
                else
                    catchUp.Overflowed = true;
            }
            else
            {
                member.Send(frame);
            }
        }
    }

    internal ValueTask<IReadOnlyList<HubMessage>> HistoryAsync(string channel, int limit, long before) =>
        _engine.HistoryAsync(channel, Math.Min(limit, _options.HistorySize), before);

    /// <summary>The channel's members: on every node when the engine shares presence, else on this one.</summary>
    internal ValueTask<IReadOnlyList<HubMember>> PresenceAsync(string channel)
    {
        if (_engine.SharesPresence)
            return _engine.PresenceAsync(channel);
        if (!_channels.TryGetValue(channel, out var state))
            return new([]);
        lock (state)
            return new(state.Members.Select(m => new HubMember(m.Key.ClientId, m.Value)).ToList());
    }

    // The request's id as it was sent: raw JSON (a string literal or a number) the parser accepted.
    internal static void WriteId(Utf8JsonWriter w, string? id)
    {
        if (id is null)
            return;
        w.WritePropertyName("id");
        w.WriteRawValue(id, skipInputValidation: true);
    }
}

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

    internal sealed class Channel
    {
        // Subscribers and their presence info (raw JSON, or null).
        public readonly Dictionary<HubSession, byte[]?> Members = [];
    }

    public MessageHub(HubOptions? options = null, IHubEngine? engine = null)
    {
        _options = options ?? new HubOptions();
        _engine = engine ?? new InMemoryHubEngine(_options.HistorySize, _options.HistoryAge, maxBytes: _options.MaxHistoryBytes);
        if (_engine is InMemoryHubEngine { InUse: null } memory)
            memory.InUse = channel => _channels.ContainsKey(channel); // members keep their channel's epoch
    }

    public HubOptions Options => _options;

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

    // Joining snapshots the missed messages and subscribes under the channel's lock, so that no
    // message falls between the replay and the live stream, and none comes twice.
    internal void Join(HubSession session, string channel, long? since, string? epoch, byte[]? info, string? id)
    {
        var state = _channels.GetOrAdd(channel, static _ => new Channel());
        List<HubSession> others;
        lock (state)
        {
            bool wasMember = state.Members.ContainsKey(session);
            state.Members[session] = info;
            session.Channels.Add(channel);
            var position = _engine.Since(channel, since ?? long.MaxValue, since is null ? null : epoch);
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
            others = wasMember || state.Members.Count > _options.MaxPresenceEventMembers
                ? []
                : state.Members.Keys.Where(s => s != session).ToList();
        }
        Announce(others, "joined", channel, session, info, withInfo: true);
    }

    internal void Leave(HubSession session, string channel)
    {
        if (!_channels.TryGetValue(channel, out var state))
            return;
        List<HubSession> others;
        lock (state)
        {
            if (!state.Members.Remove(session))
                return;
            session.Channels.Remove(channel);
            others = state.Members.Count >= _options.MaxPresenceEventMembers ? [] : [.. state.Members.Keys];
            if (state.Members.Count == 0)
                _channels.TryRemove(new KeyValuePair<string, Channel>(channel, state));
        }
        Announce(others, "left", channel, session, null, withInfo: false);
    }

    // A presence event (joined or left), framed once for everyone told of it.
    private static void Announce(List<HubSession> others, string type, string channel, HubSession session, byte[]? info, bool withInfo)
    {
        if (others.Count == 0)
            return;
        var announcement = PreparedMessage.Create(Json.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WriteString("channel", channel);
            w.WriteString("client", session.ClientId);
            if (withInfo)
                Json.WriteRaw(w, "info", info);
            w.WriteEndObject();
        }), MessageType.Text);
        foreach (var other in others)
            other.Send(announcement);
    }

    // Offsets are given and the message fanned out under the channel's lock: every subscriber
    // sees a channel's messages in offset order. The frame is built once for all of them.
    internal HubMessage Publish(HubSession session, string channel, ReadOnlyMemory<byte> data)
    {
        var state = _channels.GetOrAdd(channel, static _ => new Channel());
        lock (state)
        {
            var message = _engine.Publish(channel, data, session.ClientId);
            var frame = message.Event;
            // A snapshot: a send that fails can end its connection on this very thread, and its
            // leaving (the lock is re-entrant) must not change the set while it is walked.
            var members = new HubSession[state.Members.Count];
            state.Members.Keys.CopyTo(members, 0);
            foreach (var member in members)
                member.Send(frame);
            Metrics.Published(members.Length, frame.Payload.Length);
            return message;
        }
    }

    internal IReadOnlyList<HubMessage> History(string channel, int limit, long before) =>
        _engine.History(channel, Math.Min(limit, _options.HistorySize), before);

    internal List<(string Client, byte[]? Info)> Presence(string channel)
    {
        if (!_channels.TryGetValue(channel, out var state))
            return [];
        lock (state)
            return state.Members.Select(m => (m.Key.ClientId, m.Value)).ToList();
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

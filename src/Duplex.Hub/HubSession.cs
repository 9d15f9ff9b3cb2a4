using System.Text.Json;
using System.Text.RegularExpressions;
using Duplex.Protocol;

namespace Duplex.Hub;

/// <summary>
/// One client of the hub: reads its requests, and writes what is queued for it (answers, events,
/// channel messages) in order from one writer loop. The queue is bounded in messages and bytes;
/// a client that falls behind is closed with 1013 rather than growing memory.
/// </summary>
internal sealed partial class HubSession
{
    private readonly MessageHub _hub;
    private readonly WebSocketConnection _connection;
    private int _errorsInARow;

    public HubSession(MessageHub hub, WebSocketConnection connection, string clientId, HubIdentity identity)
    {
        _hub = hub;
        _connection = connection;
        ClientId = clientId;
        Identity = identity;
    }

    public string ClientId { get; }

    public HubIdentity Identity { get; }

    /// <summary>The channels this client is in (guarded by each channel's lock).</summary>
    public HashSet<string> Channels { get; } = [];

    public async Task RunAsync()
    {
        Send(Json.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", "welcome");
            w.WriteString("client", ClientId);
            w.WriteEndObject();
        }));
        var writer = WriteLoopAsync();
        try
        {
            while (true)
            {
                var message = await _connection.ReceiveAsync().ConfigureAwait(false);
                if (message.IsClose)
                    break;
                _hub.Metrics.Received(message.Payload.Length);
                if (!await HandleAsync(message).ConfigureAwait(false) && ++_errorsInARow >= _hub.Options.MaxConsecutiveErrors)
                {
                    await _connection.CloseAsync(CloseStatus.PolicyViolation, "too many malformed requests").ConfigureAwait(false);
                    break;
                }
            }
        }
        finally
        {
            lock (_outboxLock)
            {
                _overflowed = true; // no more writes
                _wake?.TrySetResult();
            }
            await writer.ConfigureAwait(false);
        }
    }

    // One request; false when it was malformed.
    private ValueTask<bool> HandleAsync(WebSocketMessage message) => HandleAsync(message.Payload, message.Type == MessageType.Text);

    /// <summary>One request as raw bytes (the fuzzer's way in). With the in-memory engine it completes at once.</summary>
    internal async ValueTask<bool> HandleAsync(ReadOnlyMemory<byte> payload, bool text)
    {
        if (!text)
            return Fail(null, "bad_request", "requests are JSON text messages");
        if (payload.Length > _hub.Options.MaxRequestBytes)
            return Fail(null, "too_large", $"requests are at most {_hub.Options.MaxRequestBytes} bytes");
        // A WebSocket text message is valid UTF-8 already; checked again because the JSON reader
        // does not check strings, and reading one would throw (found by fuzzing).
        if (!System.Text.Unicode.Utf8.IsValid(payload.Span))
            return Fail(null, "bad_request", "requests are UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(payload);
        }
        catch (JsonException)
        {
            return Fail(null, "bad_request", "not JSON");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return Fail(null, "bad_request", "a request is a JSON object");
            // The id goes back exactly as it came (a string stays a string, 7 stays 7): its raw JSON.
            string? id = root.TryGetProperty("id", out var idElement) && idElement.ValueKind is JsonValueKind.String or JsonValueKind.Number
                ? idElement.GetRawText()
                : null;
            string? type = root.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            switch (type)
            {
                case "ping":
                    Ok(id);
                    return Succeeded();
                case "join":
                    return await JoinRequestAsync(root, id).ConfigureAwait(false);
                case "leave":
                    if (!TryChannel(root, id, out string leaving))
                        return false;
                    _hub.Leave(this, leaving);
                    Ok(id, w => w.WriteString("channel", leaving));
                    return Succeeded();
                case "publish":
                    return await PublishRequestAsync(root, id).ConfigureAwait(false);
                case "history":
                    return await HistoryRequestAsync(root, id).ConfigureAwait(false);
                case "presence":
                    if (!TryChannel(root, id, out string channel, Access.Read))
                        return false;
                    IReadOnlyList<HubMember> members;
                    try
                    {
                        members = await _hub.PresenceAsync(channel).ConfigureAwait(false);
                    }
                    catch (HubEngineUnavailableException e)
                    {
                        Refuse(id, "unavailable", e.Message);
                        return Succeeded();
                    }
                    Ok(id, w =>
                    {
                        w.WriteString("channel", channel);
                        w.WriteStartArray("members");
                        foreach (var (client, info) in members)
                        {
                            w.WriteStartObject();
                            w.WriteString("client", client);
                            Json.WriteRaw(w, "info", info);
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                    });
                    return Succeeded();
                default:
                    return Fail(id, "bad_request", type is null ? "a request needs a type" : $"unknown request type '{type}'");
            }
        }
    }

    private async ValueTask<bool> JoinRequestAsync(JsonElement root, string? id)
    {
        if (!TryChannel(root, id, out string channel, Access.Read))
            return false;
        bool member;
        lock (Channels)
            member = Channels.Contains(channel);
        if (!member && Channels.Count >= _hub.Options.MaxChannelsPerConnection)
            return Fail(id, "too_many_channels", $"at most {_hub.Options.MaxChannelsPerConnection} channels per connection");
        long? since = null;
        if (root.TryGetProperty("since", out var s))
        {
            if (s.ValueKind != JsonValueKind.Number || !s.TryGetInt64(out long value) || value < 0)
                return Fail(id, "bad_request", "since is an offset: a whole number, 0 or more");
            since = value;
        }
        string? epoch = null;
        if (root.TryGetProperty("epoch", out var e))
        {
            if (e.ValueKind != JsonValueKind.String || e.GetString() is not { Length: > 0 and <= 64 } given)
                return Fail(id, "bad_request", "epoch is the string a message or an ok gave");
            epoch = given;
        }
        byte[]? info = root.TryGetProperty("info", out var i)
            ? System.Text.Encoding.UTF8.GetBytes(i.GetRawText())
            : Identity.Subject.Length > 0 ? Json.Write(w => { w.WriteStartObject(); w.WriteString("user", Identity.Subject); w.WriteEndObject(); }) : null;
        if (info is { Length: > 1024 })
            return Fail(id, "too_large", "info is at most 1 KiB");
        await _hub.JoinAsync(this, channel, since, epoch, info, id).ConfigureAwait(false);
        return Succeeded();
    }

    private async ValueTask<bool> PublishRequestAsync(JsonElement root, string? id)
    {
        if (!TryChannel(root, id, out string channel, Access.Publish))
            return false;
        if (!root.TryGetProperty("data", out var data))
            return Fail(id, "bad_request", "publish needs data");
        bool member;
        lock (Channels)
            member = Channels.Contains(channel);
        if (!member)
            return Fail(id, "not_joined", $"join '{channel}' before publishing to it");
        HubMessage message;
        try
        {
            message = await _hub.PublishAsync(this, channel, System.Text.Encoding.UTF8.GetBytes(data.GetRawText())).ConfigureAwait(false);
        }
        catch (HubEngineUnavailableException e)
        {
            Refuse(id, "unavailable", e.Message); // never an ok for what was not stored
            return Succeeded();
        }
        Ok(id, w =>
        {
            w.WriteString("channel", channel);
            w.WriteString("epoch", message.Epoch);
            w.WriteNumber("offset", message.Offset);
        });
        return Succeeded();
    }

    private async ValueTask<bool> HistoryRequestAsync(JsonElement root, string? id)
    {
        if (!TryChannel(root, id, out string channel, Access.Read))
            return false;
        int limit = _hub.Options.HistorySize;
        if (root.TryGetProperty("limit", out var l) && (l.ValueKind != JsonValueKind.Number || !l.TryGetInt32(out limit) || limit < 0))
            return Fail(id, "bad_request", "limit is a whole number, 0 or more");
        long before = long.MaxValue;
        if (root.TryGetProperty("before", out var b) && (b.ValueKind != JsonValueKind.Number || !b.TryGetInt64(out before) || before < 1))
            return Fail(id, "bad_request", "before is an offset: a whole number, 1 or more");
        // One answer holds at most a quarter of the outbox, so asking for history can never make
        // the asker a slow consumer: the newest that fit come back, with `before` to page on.
        IReadOnlyList<HubMessage> messages;
        bool older;
        try
        {
            messages = await _hub.HistoryAsync(channel, limit, before).ConfigureAwait(false);
            older = messages.Count > 0 && (await _hub.HistoryAsync(channel, 1, messages[0].Offset).ConfigureAwait(false)).Count > 0;
        }
        catch (HubEngineUnavailableException e)
        {
            Refuse(id, "unavailable", e.Message);
            return Succeeded();
        }
        long budget = _hub.Options.MaxQueuedBytes / 4, size = 0;
        int first = messages.Count;
        while (first > 0 && (first == messages.Count || size + messages[first - 1].Data.Length + 256 <= budget))
            size += messages[--first].Data.Length + 256;
        bool more = first > 0 || older;
        Ok(id, w =>
        {
            w.WriteString("channel", channel);
            w.WriteStartArray("messages");
            for (int i = first; i < messages.Count; i++)
                messages[i].Write(w);
            w.WriteEndArray();
            if (more)
            {
                w.WriteBoolean("more", true);
                w.WriteNumber("before", messages[first].Offset);
            }
        });
        return Succeeded();
    }

    private bool Succeeded()
    {
        _errorsInARow = 0;
        return true;
    }

}

using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Threading.Channels;

namespace Duplex.Hub;

/// <summary>A message received from a hub channel: its place is (<see cref="Epoch"/>, <see cref="Offset"/>).</summary>
public sealed record HubChannelMessage(string Channel, string Epoch, long Offset, JsonElement Data, string From, DateTimeOffset Time)
{
    /// <summary>The data as a <typeparamref name="T"/>, with source-generated metadata (trimming and AOT friendly).</summary>
    public T? GetData<T>(JsonTypeInfo<T> typeInfo) => Data.Deserialize(typeInfo);

    /// <summary>The data as a <typeparamref name="T"/> (reflection-based serialization).</summary>
    public T? GetData<T>(JsonSerializerOptions? options = null) => Data.Deserialize<T>(options);
}

/// <summary>A page of a channel's history, oldest first; <see cref="Before"/> asks for the page before it when <see cref="More"/>.</summary>
public sealed record HubHistory(string Channel, IReadOnlyList<HubChannelMessage> Messages, bool More, long? Before);

/// <summary>A member of a channel: its client id and the <c>info</c> it joined with.</summary>
public sealed record HubPresenceMember(string Client, JsonElement? Info);

/// <summary>Someone joined (<see cref="Joined"/>) or left a channel this client is in.</summary>
public sealed record HubPresenceEvent(string Channel, string Client, bool Joined, JsonElement? Info);

/// <summary>The client is connected: its (new) client id, and whether this is a reconnection.</summary>
public sealed record HubConnected(string ClientId, bool Reconnected);

/// <summary>The connection was lost (the client reconnects by itself): how it ended, when that is known.</summary>
public sealed record HubDisconnected(int? CloseStatus, string? CloseReason, Exception? Error);

/// <summary>After a reconnect, a channel's missed messages (<see cref="Missed"/> of them) are replayed: nothing was lost.</summary>
public sealed record HubRecovered(string Channel, long Missed);

/// <summary>
/// A channel's missed messages could not be recovered after a reconnect: they left the history,
/// or the stream itself is new (<see cref="StreamReset"/>: the server restarted, or the channel's
/// history was dropped). The client goes on from (<see cref="Epoch"/>, <see cref="Offset"/>); what
/// was published in between may be missing — fetch the history or tell the user.
/// </summary>
public sealed record HubRecoveryFailed(string Channel, string? PreviousEpoch, long PreviousOffset, string Epoch, long Offset)
{
    /// <summary>True when the channel's history was reset (a new epoch, as after a restart without persistence), not only trimmed.</summary>
    public bool StreamReset => PreviousEpoch is not null && PreviousEpoch != Epoch;
}

/// <summary>The hub refused a request (its error code and message).</summary>
public sealed class HubException(string code, string message) : Exception(message)
{
    /// <summary>The hub's error code: forbidden, bad_request, too_large, not_joined, rate_limited and so on (docs/hub-protocol.md).</summary>
    public string Code { get; } = code;
}

/// <summary>Settings for <see cref="HubClient"/>.</summary>
public sealed class HubClientOptions
{
    /// <summary>The WebSocket settings (headers such as Authorization, TLS, compression).</summary>
    public WebSocketClientOptions Connection { get; set; } = new();

    /// <summary>First wait before reconnecting; it doubles on each failure, with jitter. Default 0.5 s.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait between reconnection attempts. Default 30 s.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a request waits for its answer. Default 30 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Messages received and not yet read through <see cref="HubClient.ReadAllAsync"/>. Default
    /// 10,000. When it is full the client stops reading its connection until the application
    /// reads: nothing is dropped here; the hub's own bound on what waits for a slow client then
    /// applies (it closes the connection with 1013), and the client reconnects and recovers the
    /// rest from history. Answers to requests wait behind the queue too, so read messages on a
    /// task of their own rather than between awaited requests.
    /// </summary>
    public int MaxQueuedMessages { get; set; } = 10_000;
}

/// <summary>
/// A .NET client for the Duplex hub: join channels, publish (awaiting the hub's acknowledgement),
/// read messages as an async stream. It reconnects by itself with exponential backoff and jitter,
/// joins its channels again with <c>since</c> and the stream's epoch, and so recovers the messages
/// it missed; each message is delivered once, in offset order per channel. When they cannot be
/// recovered (gone from history, or a new epoch after a server restart) it says so with
/// <see cref="RecoveryFailed"/> and goes on with the new messages.
/// </summary>
public sealed class HubClient : IAsyncDisposable
{
    private readonly Uri _uri;
    private readonly HubClientOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private volatile bool _disposing;   // set before the clean close: the read loop must not reconnect
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonElement>> _pending = new();
    // Per channel joined: the position of the last message delivered (epoch and offset) and the join's info.
    private readonly ConcurrentDictionary<string, ChannelState> _channels = new();
    private sealed record ChannelState(string? Epoch, long LastOffset, string? Info);
    private readonly Channel<HubChannelMessage> _messages; // bounded: MaxQueuedMessages, the read loop waits when full
    private TaskCompletionSource<WebSocketConnection> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _run;
    private int _nextId;

    private HubClient(Uri uri, HubClientOptions options)
    {
        _uri = uri;
        _options = options;
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxQueuedMessages, 1);
        _messages = Channel.CreateBounded<HubChannelMessage>(new BoundedChannelOptions(options.MaxQueuedMessages)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleWriter = true,
        });
        _run = RunAsync();
    }

    /// <summary>Starts the client and waits for its first connection.</summary>
    public static async Task<HubClient> ConnectAsync(Uri uri, HubClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        var client = new HubClient(uri, options ?? new HubClientOptions());
        try
        {
            await client._connected.Task.WaitAsync(client._options.Connection.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return client;
    }

    /// <summary>This connection's client id (it changes when the client reconnects).</summary>
    public string? ClientId { get; private set; }

    /// <summary>Messages received and waiting to be read (at most <see cref="HubClientOptions.MaxQueuedMessages"/>).</summary>
    public int QueuedMessages => _messages.Reader.Count;

    /// <summary>How many times the client has reconnected.</summary>
    public int Reconnects { get; private set; }

    // The events are raised on the client's read loop: handlers must return quickly, and one
    // that throws does not stop the client.

    /// <summary>
    /// A channel's missed messages could not be recovered after a reconnect: its position is
    /// lost. Messages go on arriving from the new position.
    /// </summary>
    public event Action<HubRecoveryFailed>? PositionLost;

    /// <summary>The former name of <see cref="PositionLost"/>.</summary>
    [Obsolete("Use PositionLost.")]
    public event Action<HubRecoveryFailed>? RecoveryFailed
    {
        add => PositionLost += value;
        remove => PositionLost -= value;
    }

    /// <summary>Connected, or connected again (after which every channel is joined again).</summary>
    public event Action<HubConnected>? Connected;

    /// <summary>The connection was lost; the client is about to reconnect (not raised on dispose).</summary>
    public event Action<HubDisconnected>? Disconnected;

    /// <summary>After a reconnect, a channel's missed messages follow: nothing was lost.</summary>
    public event Action<HubRecovered>? Recovered;

    /// <summary>Someone joined or left a channel this client is in (channels of up to 1,000 members).</summary>
    public event Action<HubPresenceEvent>? PresenceChanged;

    private static void Raise<T>(Action<T>? handler, T value)
    {
        try
        {
            handler?.Invoke(value);
        }
        catch (Exception)
        {
            // The application's handler failed: the client goes on regardless.
        }
    }

    /// <summary>Joins a channel; returns its latest offset. Messages published from then on arrive through <see cref="ReadAllAsync"/>.</summary>
    public async Task<long> JoinAsync(string channel, object? info = null, CancellationToken cancellationToken = default)
    {
        string? infoJson = info is null ? null : JsonSerializer.Serialize(info);
        var answer = await RequestAsync(w =>
        {
            w.WriteString("type", "join");
            w.WriteString("channel", channel);
            if (infoJson is not null)
            {
                w.WritePropertyName("info");
                w.WriteRawValue(infoJson);
            }
        }, cancellationToken).ConfigureAwait(false);
        long latest = answer.GetProperty("offset").GetInt64();
        string? epoch = answer.TryGetProperty("epoch", out var e) ? e.GetString() : null;
        _channels.AddOrUpdate(channel, new ChannelState(epoch, latest, infoJson),
            (_, old) => old.Epoch == epoch ? old with { LastOffset = Math.Max(old.LastOffset, latest), Info = infoJson } : new ChannelState(epoch, latest, infoJson));
        return latest;
    }

    /// <summary>Leaves a channel: no more of its messages, and the others present see this client go.</summary>
    public async Task LeaveAsync(string channel, CancellationToken cancellationToken = default)
    {
        _channels.TryRemove(channel, out _);
        await RequestAsync(w =>
        {
            w.WriteString("type", "leave");
            w.WriteString("channel", channel);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Publishes data (serialized as JSON); returns the message's offset once the hub has accepted it.</summary>
    public Task<long> PublishAsync(string channel, object? data, CancellationToken cancellationToken = default) =>
        PublishJsonAsync(channel, JsonSerializer.Serialize(data), cancellationToken);

    /// <summary>Publishes data serialized with source-generated metadata; returns the message's offset once the hub has accepted it.</summary>
    public Task<long> PublishAsync<T>(string channel, T data, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken = default) =>
        PublishJsonAsync(channel, JsonSerializer.Serialize(data, typeInfo), cancellationToken);

    /// <summary>
    /// A page of the channel's history, oldest first: at most <paramref name="limit"/> messages
    /// (default: the hub's history size), older than offset <paramref name="before"/> when given.
    /// </summary>
    public async Task<HubHistory> HistoryAsync(string channel, int? limit = null, long? before = null, CancellationToken cancellationToken = default)
    {
        var answer = await RequestAsync(w =>
        {
            w.WriteString("type", "history");
            w.WriteString("channel", channel);
            if (limit is int l)
                w.WriteNumber("limit", l);
            if (before is long b)
                w.WriteNumber("before", b);
        }, cancellationToken).ConfigureAwait(false);
        var messages = answer.GetProperty("messages").EnumerateArray().Select(ChannelMessage).ToList();
        bool more = answer.TryGetProperty("more", out var m) && m.GetBoolean();
        long? next = answer.TryGetProperty("before", out var n) && n.ValueKind == JsonValueKind.Number ? n.GetInt64() : null;
        return new HubHistory(channel, messages, more, next);
    }

    /// <summary>The channel's members (on every node of a scale-out), with the info each joined with.</summary>
    public async Task<IReadOnlyList<HubPresenceMember>> PresenceAsync(string channel, CancellationToken cancellationToken = default)
    {
        var answer = await RequestAsync(w =>
        {
            w.WriteString("type", "presence");
            w.WriteString("channel", channel);
        }, cancellationToken).ConfigureAwait(false);
        return answer.GetProperty("members").EnumerateArray()
            .Select(member => new HubPresenceMember(member.GetProperty("client").GetString() ?? "", Info(member)))
            .ToList();
    }

    private static JsonElement? Info(JsonElement element) =>
        element.TryGetProperty("info", out var info) && info.ValueKind != JsonValueKind.Null ? info.Clone() : null;

    // A `message` object (an event, or an entry of a history page), copied out of its document.
    private static HubChannelMessage ChannelMessage(JsonElement root) => new(
        root.GetProperty("channel").GetString()!,
        root.TryGetProperty("epoch", out var e) ? e.GetString() ?? "" : "",
        root.GetProperty("offset").GetInt64(),
        root.GetProperty("data").Clone(),
        root.TryGetProperty("from", out var from) ? from.GetString() ?? "" : "",
        root.GetProperty("time").GetDateTimeOffset());

    private async Task<long> PublishJsonAsync(string channel, string json, CancellationToken cancellationToken)
    {
        var answer = await RequestAsync(w =>
        {
            w.WriteString("type", "publish");
            w.WriteString("channel", channel);
            w.WritePropertyName("data");
            w.WriteRawValue(json);
        }, cancellationToken).ConfigureAwait(false);
        return answer.GetProperty("offset").GetInt64();
    }

    /// <summary>Messages from the channels joined, once each, in offset order per channel, across reconnections.</summary>
    public async IAsyncEnumerable<HubChannelMessage> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await _messages.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (_messages.Reader.TryRead(out var message))
                yield return message;
        }
    }

    private async Task<JsonElement> RequestAsync(Action<Utf8JsonWriter> fields, CancellationToken cancellationToken)
    {
        string id = Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var answer = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
            timeout.CancelAfter(_options.RequestTimeout);
            var ws = await _connected.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
            byte[] request = Json.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("id", id);
                fields(w);
                w.WriteEndObject();
            });
            await ws.SendTextAsync(request, timeout.Token).ConfigureAwait(false);
            var result = await answer.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
            if (result.GetProperty("type").GetString() == "error")
                throw new HubException(result.GetProperty("code").GetString() ?? "error", result.GetProperty("message").GetString() ?? "");
            return result;
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    // Connect, rejoin with since, read until the connection ends, back off, repeat.
    private async Task RunAsync()
    {
        int failures = 0;
        while (!_stop.IsCancellationRequested && !_disposing)
        {
            WebSocketConnection? ws = null;
            Exception? error = null;
            try
            {
                ws = await WebSocketClient.ConnectAsync(_uri, _options.Connection, _stop.Token).ConfigureAwait(false);
                failures = 0;
                await ReadAsync(ws).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !_stop.IsCancellationRequested)
            {
                error = e;
                if (e is WebSocketHandshakeException { StatusCode: 401 or 403 })
                    _connected.TrySetException(e); // refused: retrying will not help the first connect
            }
            finally
            {
                bool wasConnected = false;
                if (ws is not null)
                {
                    await ws.DisposeAsync().ConfigureAwait(false);
                    wasConnected = _connected.Task.IsCompletedSuccessfully;
                    if (wasConnected)
                        _connected = new TaskCompletionSource<WebSocketConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                foreach (var request in _pending.Values)
                    request.TrySetException(new WebSocketClosedException("The hub connection was lost; the request may not have been done."));
                if (wasConnected && !_disposing && !_stop.IsCancellationRequested)
                    Raise(Disconnected, new HubDisconnected((int?)ws!.CloseStatus, ws.CloseReason, error));
            }
            if (_stop.IsCancellationRequested || _disposing)
                break;
            // Exponential backoff with full jitter, so that many clients do not return at once.
            double ceiling = Math.Min(_options.MaxBackoff.TotalMilliseconds, _options.InitialBackoff.TotalMilliseconds * Math.Pow(2, failures++));
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(ceiling * (0.5 + Random.Shared.NextDouble() / 2)), _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            Reconnects++;
        }
        _messages.Writer.TryComplete();
    }

    private async Task ReadAsync(WebSocketConnection ws)
    {
        while (true)
        {
            var message = await ws.ReceiveAsync(_stop.Token).ConfigureAwait(false);
            if (message.IsClose)
                return;
            using var document = JsonDocument.Parse(message.Payload);
            var root = document.RootElement;
            switch (root.GetProperty("type").GetString())
            {
                case "welcome":
                    ClientId = root.GetProperty("client").GetString();
                    await RejoinAsync(ws).ConfigureAwait(false);
                    _connected.TrySetResult(ws);
                    Raise(Connected, new HubConnected(ClientId ?? "", Reconnects > 0));
                    break;
                case "message":
                    var received = ChannelMessage(root);
                    // Offsets compare within one epoch only: a message of another epoch is a new
                    // stream (the rejoin's answer has said so), never one already seen.
                    if (_channels.TryGetValue(received.Channel, out var state) && (state.Epoch != received.Epoch || received.Offset > state.LastOffset))
                    {
                        _channels[received.Channel] = state with { Epoch = received.Epoch, LastOffset = received.Offset };
                        await _messages.Writer.WriteAsync(received, _stop.Token).ConfigureAwait(false); // waits while the queue is full
                    }
                    break;
                case "joined" or "left":
                    Raise(PresenceChanged, new HubPresenceEvent(root.GetProperty("channel").GetString() ?? "",
                        root.GetProperty("client").GetString() ?? "", root.GetProperty("type").GetString() == "joined", Info(root)));
                    break;
                case "ok" or "error":
                    if (!root.TryGetProperty("id", out var id) || id.GetString() is not { } key)
                        break;
                    if (key.StartsWith(RejoinId, StringComparison.Ordinal))
                        Rejoined(key[RejoinId.Length..], root);
                    else if (_pending.TryGetValue(key, out var pending))
                        pending.TrySetResult(root.Clone());
                    break;
            }
        }
    }

    // Rejoins are asked with this id and the channel's name: their answers are handled by the read loop itself.
    private const string RejoinId = "rejoin:";

    // Back after a disconnect: join every channel again from the last position seen. Missed
    // messages follow the answer; when they are gone (recovered: false) the position moves to
    // the stream's current one and the application is told.
    private async Task RejoinAsync(WebSocketConnection ws)
    {
        foreach (var (channel, state) in _channels)
        {
            byte[] join = Json.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("type", "join");
                w.WriteString("id", RejoinId + channel);
                w.WriteString("channel", channel);
                w.WriteNumber("since", state.LastOffset);
                if (state.Epoch is not null)
                    w.WriteString("epoch", state.Epoch);
                if (state.Info is not null)
                {
                    w.WritePropertyName("info");
                    w.WriteRawValue(state.Info);
                }
                w.WriteEndObject();
            });
            await ws.SendTextAsync(join).ConfigureAwait(false);
        }
    }

    private void Rejoined(string channel, JsonElement answer)
    {
        if (answer.GetProperty("type").GetString() != "ok" || !answer.TryGetProperty("recovered", out var recovered)
            || !_channels.TryGetValue(channel, out var state))
            return;
        if (recovered.GetBoolean())
        {
            Raise(Recovered, new HubRecovered(channel, answer.TryGetProperty("missed", out var missed) ? missed.GetInt64() : 0));
            return;
        }
        string epoch = answer.GetProperty("epoch").GetString() ?? "";
        long offset = answer.GetProperty("offset").GetInt64();
        _channels[channel] = state with { Epoch = epoch, LastOffset = offset };
        Raise(PositionLost, new HubRecoveryFailed(channel, state.Epoch, state.LastOffset, epoch, offset));
    }

    /// <summary>Closes the connection with 1000 (waiting at most its close timeout), then stops for good.</summary>
    public async ValueTask DisposeAsync()
    {
        _disposing = true;
        if (_connected.Task.IsCompletedSuccessfully)
        {
            try
            {
                await _connected.Task.Result.CloseAsync(Duplex.Protocol.CloseStatus.NormalClosure, "client disposed").ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketClosedException or OperationCanceledException)
            {
            }
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _run.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}

using System.Buffers;
using Duplex.Protocol.Deflate;

namespace Duplex.Protocol;

/// <summary>The states of a connection's protocol (RFC 6455 §4-§7).</summary>
internal enum ProtocolState
{
    Open,
    /// <summary>Our close frame went out; the peer's has not come.</summary>
    CloseSent,
    /// <summary>The peer's close frame came; ours (the echo) has not gone out yet.</summary>
    CloseReceived,
    /// <summary>Both close frames are exchanged: only the end of TCP is left.</summary>
    Closing,
    /// <summary>Over: handshake done and TCP ended, or failed, lost, timed out, aborted.</summary>
    Closed,
}

/// <summary>What the receive half is reading for.</summary>
internal enum ReceiveMode
{
    /// <summary>For the application: a held message first, then the next one read; lent until the next Deliver.</summary>
    Deliver,
    /// <summary>For keep-alive, while the application is not receiving: the next message is held for it.</summary>
    ReadAhead,
    /// <summary>While closing: data messages are dropped.</summary>
    Discard,
}

/// <summary>What <see cref="WebSocketProtocol.Receive"/> found.</summary>
internal enum ProtocolEvent
{
    /// <summary>Feed bytes (<see cref="WebSocketProtocol.GetReceiveMemory"/>) or the end of the stream.</summary>
    NeedMoreData,
    /// <summary>A data message: <see cref="WebSocketProtocol.MessageOpcode"/>, <see cref="WebSocketProtocol.Payload"/> (lent, or held when reading ahead).</summary>
    Message,
    /// <summary>A ping: a pong is owed (<see cref="WebSocketProtocol.WriteOwedFrames"/>).</summary>
    Ping,
    /// <summary>A pong: its payload is <see cref="WebSocketProtocol.Payload"/>.</summary>
    Pong,
    /// <summary>The peer's close: an echo may be owed; then end the transport (<see cref="WebSocketProtocol.ShouldEndTransport"/>).</summary>
    Close,
    /// <summary>The peer broke a rule: a close frame with the reason is owed; then end the transport.</summary>
    Failed,
    /// <summary>The connection is over: <see cref="WebSocketProtocol.CloseStatus"/> says how.</summary>
    Ended,
}

/// <summary>What a timer tick asks of the connection.</summary>
internal enum TimerAction
{
    None,
    /// <summary>The peer has been quiet for the keep-alive interval: send a ping (<see cref="WebSocketProtocol.WritePing"/>).</summary>
    SendPing,
    /// <summary>No answer to the keep-alive ping within its timeout: drop the connection.</summary>
    KeepAliveTimedOut,
    /// <summary>The close handshake did not finish within the close timeout: drop the connection.</summary>
    CloseTimedOut,
    /// <summary>A write has waited for the peer to read for longer than the send timeout: drop the connection.</summary>
    SendTimedOut,
}

/// <summary>The settings the protocol needs, free of any type above this layer.</summary>
internal sealed record ProtocolSettings(
    Role Role,
    long MaxMessageSize,
    TimeSpan KeepAliveInterval,
    TimeSpan KeepAliveTimeout,
    TimeSpan CloseTimeout,
    TimeProvider Time,
    TimeSpan SendTimeout,
    DeflateParameters? Deflate = null,
    DeflateSettings DeflateSettings = default)
{
    public bool KeepAliveEnabled => KeepAliveInterval > TimeSpan.Zero && KeepAliveInterval != Timeout.InfiniteTimeSpan;
}

/// <summary>
/// The WebSocket protocol of one connection, both roles, with no I/O (the shape of
/// python-websockets' <c>Protocol</c>): bytes in → events out; send calls → bytes to write.
/// It applies every rule of RFC 6455 and 7692: it owes a pong for each ping and an echo for the
/// peer's close, fails the connection with the right status, says when to end TCP and who does,
/// compresses and inflates, and decides when keep-alive pings and close timeouts fall due.
/// </summary>
/// <remarks>
/// Two halves, each used by one caller at a time (the connection's receive lock and send lock):
/// the receive half (<see cref="Receive"/>, <see cref="GetReceiveMemory"/>, …) and the send half
/// (<c>Write…</c>, <see cref="Output"/>). They share only the state, which moves by
/// compare-and-swap, and the frames the receive half owes, handed over by atomic exchange.
/// </remarks>
internal sealed class WebSocketProtocol
{
    private const int DirectPayloadThreshold = 64 * 1024;

    private readonly ProtocolSettings _settings;
    private readonly PerMessageDeflate? _deflate;

    // Shared by both halves. _state moves only forward, by CompareExchange. The end record
    // (status, reason) is written once, by whoever wins _endRecorded, before it is published.
    private int _state;
    private int _endRecorded;
    private CloseStatus _closeStatus;
    private string? _closeReason;
    private volatile bool _failed;
    private long _closeStarted;                 // timestamp of the first close frame either way; 0 before
    private byte[]? _owedPong;                  // set by the receive half, taken by the send half
    private OwedClose? _owedClose;              // likewise

    private sealed record OwedClose(CloseStatus Status, string? Reason);

    // The receive half.
    private readonly MessageReader _reader;
    private readonly Inbox _inbox;
    private long _lastReceived;

    // The send half.
    private readonly OutputBuffer _output = new();
    private readonly MaskKeySource? _masks;
    private ReadOnlyMemory<byte> _direct;
    private long _pingSent;
    private long _writeWaitingSince;            // timestamp of a write still waiting for the peer; 0 when none

    public WebSocketProtocol(ProtocolSettings settings)
    {
        _settings = settings;
        _reader = new MessageReader(settings.Role, settings.MaxMessageSize);
        _inbox = new Inbox(_reader);
        if (settings.Role == Role.Client)
            _masks = new MaskKeySource();
        if (settings.Deflate is { } parameters)
        {
            _deflate = new PerMessageDeflate(parameters, settings.DeflateSettings, settings.Role, settings.MaxMessageSize);
            _reader.AllowedRsv = FrameHeader.Rsv1;
        }
        _lastReceived = settings.Time.GetTimestamp();
    }

    public Role Role => _settings.Role;

    public ProtocolSettings Settings => _settings;

    public DeflateParameters? Compression => _deflate?.Parameters;

    public ProtocolState State => (ProtocolState)Volatile.Read(ref _state);

    /// <summary>Once the end is recorded: the status (the peer's close code, 1005 without one, 1006 when lost, or ours on a failure).</summary>
    public CloseStatus? CloseStatus => Volatile.Read(ref _endRecorded) == 2 ? _closeStatus : null;

    public string? CloseReason => Volatile.Read(ref _endRecorded) == 2 ? _closeReason : null;

    /// <summary>
    /// True when the transport should end now: the close frames are exchanged, or the connection
    /// failed and its close frame has gone out. <see cref="ShutsDownFirst"/> says who ends TCP.
    /// </summary>
    public bool ShouldEndTransport => State switch
    {
        ProtocolState.Closing or ProtocolState.Closed => true,
        ProtocolState.CloseSent => _failed,
        _ => false,
    };

    /// <summary>The server ends TCP first (§7.1.1); a client waits for the server's FIN.</summary>
    public bool ShutsDownFirst => _settings.Role == Role.Server;

    /// <summary>
    /// Ends the connection: records how (the first record wins: a close frame received earlier
    /// keeps its status) and moves to Closed. True for the call that closed it.
    /// </summary>
    public bool End(CloseStatus status, string? reason)
    {
        RecordEnd(status, reason);
        while (true)
        {
            int state = Volatile.Read(ref _state);
            if (state == (int)ProtocolState.Closed)
                return false;
            if (Interlocked.CompareExchange(ref _state, (int)ProtocolState.Closed, state) == state)
                return true;
        }
    }

    private void RecordEnd(CloseStatus status, string? reason)
    {
        if (Interlocked.CompareExchange(ref _endRecorded, 1, 0) != 0)
            return;
        _closeStatus = status;
        _closeReason = reason;
        Volatile.Write(ref _endRecorded, 2);
    }

    // Moves the state when a close frame goes one way or the other; false when it cannot.
    private bool Transition(bool sent)
    {
        while (true)
        {
            var state = (ProtocolState)Volatile.Read(ref _state);
            ProtocolState next;
            switch (state)
            {
                case ProtocolState.Open:
                    next = sent ? ProtocolState.CloseSent : ProtocolState.CloseReceived;
                    break;
                case ProtocolState.CloseSent when !sent:
                case ProtocolState.CloseReceived when sent:
                    next = ProtocolState.Closing;
                    break;
                default:
                    return false;
            }
            if (Interlocked.CompareExchange(ref _state, (int)next, (int)state) == (int)state)
            {
                Interlocked.CompareExchange(ref _closeStarted, _settings.Time.GetTimestamp(), 0);
                return true;
            }
        }
    }

    // ------------------------------------------------------------ the receive half

    /// <summary>The payload of the last <see cref="ProtocolEvent.Message"/>, <see cref="ProtocolEvent.Ping"/> or <see cref="ProtocolEvent.Pong"/>.</summary>
    public ReadOnlyMemory<byte> Payload { get; private set; }

    /// <summary>Text or Binary, for the last <see cref="ProtocolEvent.Message"/>.</summary>
    public Opcode MessageOpcode { get; private set; }

    /// <summary>True while messages read ahead fill the inbox: reading ahead stops until the application takes one.</summary>
    public bool InboxFull => _inbox.IsFull;

    /// <summary>True when no partial message and no unread byte is held.</summary>
    public bool IsIdle => _reader.IsIdle;

    /// <summary>
    /// The next event from the bytes received so far. A Deliver ends the application's loan of the
    /// last payload; any other mode first moves that payload out of the reader's way.
    /// </summary>
    public ProtocolEvent Receive(ReceiveMode mode)
    {
        Payload = default;
        if (mode == ReceiveMode.Deliver)
            _inbox.Reclaim(); // the application asked again: it is done with the last payload
        if (State == ProtocolState.Closed)
            return ProtocolEvent.Ended;
        if (mode == ReceiveMode.Deliver)
        {
            if (_inbox.TryTakeHeld(out var heldType, out bool heldCompressed, out var held, out var heldBuffer))
                return Deliver(heldType, heldCompressed, held, heldBuffer);
        }
        else if (mode == ReceiveMode.ReadAhead)
        {
            if (!_inbox.PrepareReadAhead())
                return ProtocolEvent.Message; // two wait for the application already: read no further
        }
        else
        {
            _inbox.Detach();
            _inbox.DropHeld();
        }
        while (true)
        {
            switch (_reader.Read())
            {
                case ReadEvent.NeedMoreData:
                    return ProtocolEvent.NeedMoreData;
                case ReadEvent.Message:
                    var type = _reader.MessageType;
                    bool compressed = (_reader.MessageRsv & FrameHeader.Rsv1) != 0;
                    if (mode == ReceiveMode.Discard)
                        continue;
                    if (mode == ReceiveMode.ReadAhead)
                    {
                        _inbox.Hold(type, compressed, _reader.Payload); // inflated when handed over
                        MessageOpcode = type;
                        return ProtocolEvent.Message;
                    }
                    return Deliver(type, compressed, _reader.Payload, null);
                case ReadEvent.Ping:
                    // Only the latest ping needs its pong (§5.5.3); none once our close is out.
                    if (State is ProtocolState.Open)
                        Volatile.Write(ref _owedPong, _reader.Payload.ToArray());
                    Payload = _reader.Payload;
                    return ProtocolEvent.Ping;
                case ReadEvent.Pong:
                    Payload = _reader.Payload;
                    return ProtocolEvent.Pong;
                case ReadEvent.Close:
                    RecordEnd(_reader.CloseStatus, _reader.CloseReason);
                    // Answered with the same status and no reason (§5.5.1); nothing if ours went first.
                    if (Transition(sent: false) && State == ProtocolState.CloseReceived)
                        Volatile.Write(ref _owedClose, new OwedClose(_reader.CloseStatus, null));
                    return ProtocolEvent.Close;
                default:
                    return Fail(_reader.Error);
            }
        }
    }

    // Hands a message to the application: inflated when it was compressed, checked for UTF-8
    // when it is text; or fails the connection when the peer broke a rule.
    private ProtocolEvent Deliver(Opcode type, bool compressed, ReadOnlyMemory<byte> payload, byte[]? pooledCopy)
    {
        MessageOpcode = type;
        if (!compressed)
        {
            _inbox.Lend(pooledCopy);
            Payload = payload;
            return ProtocolEvent.Message;
        }
        try
        {
            if (_deflate is null)
                return Fail(ProtocolError.Protocol("compressed message without permessage-deflate"));
            var status = _deflate.Decompress(payload.Span, out var buffer, out int length);
            if (status != InflateStatus.Ok || (type == Opcode.Text && !Utf8Validator.IsValid(buffer.AsSpan(0, length))))
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return Fail(status switch
                {
                    InflateStatus.TooBig => new ProtocolError(Protocol.CloseStatus.MessageTooBig, $"message over the {_settings.MaxMessageSize}-byte limit once inflated"),
                    InflateStatus.Invalid => ProtocolError.InvalidUtf8("invalid compressed data"),
                    _ => ProtocolError.InvalidUtf8("text message is not valid UTF-8"),
                });
            }
            _inbox.Lend(buffer);
            Payload = buffer.AsMemory(0, length);
            return ProtocolEvent.Message;
        }
        finally
        {
            if (pooledCopy is not null)
                ArrayPool<byte>.Shared.Return(pooledCopy); // the compressed copy: no longer needed
        }
    }

    /// <summary>
    /// §7.1.7 "Fail the WebSocket Connection": one close frame with the status and reason is owed
    /// (unless ours already went out), then the transport ends. Also for the connection's own
    /// failures (an outbound rule broken, a limit hit).
    /// </summary>
    public ProtocolEvent Fail(ProtocolError error)
    {
        _failed = true;
        RecordEnd(error.Status, error.Reason);
        Interlocked.CompareExchange(ref _closeStarted, _settings.Time.GetTimestamp(), 0);
        if (State is ProtocolState.Open or ProtocolState.CloseReceived)
            Volatile.Write(ref _owedClose, new OwedClose(error.Status, CloseFrame.Truncate(error.Reason)));
        return ProtocolEvent.Failed;
    }

    /// <summary>A buffer to receive into (at least one byte); then <see cref="Received(int)"/> with the count.</summary>
    public Memory<byte> GetReceiveMemory() => _reader.GetMemory();

    public void Received(int count)
    {
        _reader.Advance(count);
        Volatile.Write(ref _lastReceived, _settings.Time.GetTimestamp());
    }

    /// <summary>Copies bytes in (bytes that came with the handshake; tests).</summary>
    public void Received(ReadOnlySpan<byte> bytes)
    {
        _reader.Write(bytes);
        Volatile.Write(ref _lastReceived, _settings.Time.GetTimestamp());
    }

    /// <summary>Before waiting for bytes: an idle reader gives its buffer back, so an idle connection holds none.</summary>
    public void ReleaseIdleBuffer() => _reader.ReleaseBufferIfIdle();

    /// <summary>Frees the receive half; a payload still lent is left intact (see <see cref="Inbox"/>).</summary>
    public void DisposeReceiver()
    {
        _inbox.Dispose();
        _deflate?.DisposeReceiver();
    }

    // ------------------------------------------------------------ the send half

    /// <summary>The bytes to write, gathered by the Write… calls.</summary>
    public OutputBuffer Output => _output;

    /// <summary>
    /// A large payload that must follow <see cref="Output"/> on the wire straight from the
    /// caller's memory (no copy); written before the send call returns. Empty when none.
    /// </summary>
    public ReadOnlyMemory<byte> DirectPayload => _direct;

    /// <summary>After <see cref="Output"/> and <see cref="DirectPayload"/> were written.</summary>
    public void OutputWritten()
    {
        _output.Clear();
        _direct = default;
        // The close timeout counts from when our close (or the echo) could reach the peer: a close
        // that waited behind a full socket was governed by the send timeout until now.
        if (Interlocked.Exchange(ref _writeWaitingSince, 0) != 0 && Volatile.Read(ref _closeStarted) != 0)
            Volatile.Write(ref _closeStarted, _settings.Time.GetTimestamp());
    }

    /// <summary>A write could not finish at once: the peer is not reading fast enough. Starts the send timeout.</summary>
    public void WriteWaiting() => Interlocked.CompareExchange(ref _writeWaitingSince, _settings.Time.GetTimestamp(), 0);

    /// <summary>Whether data messages may still be sent (no close of ours has gone out).</summary>
    public bool CanSendData => State is ProtocolState.Open or ProtocolState.CloseReceived;

    /// <summary>Frames owed by the receive half are waiting (a pong, a close echo, a failure's close).</summary>
    public bool OwesFrames => Volatile.Read(ref _owedPong) is not null || Volatile.Read(ref _owedClose) is not null;

    /// <summary>Writes what the receive half owes: the latest ping's pong, then the close echo or failure close.</summary>
    public void WriteOwedFrames()
    {
        if (Interlocked.Exchange(ref _owedPong, null) is { } pong && State == ProtocolState.Open)
            WriteFrame(Opcode.Pong, true, 0, pong);
        if (Interlocked.Exchange(ref _owedClose, null) is { } close)
            WriteClose(close.Status, close.Reason);
    }

    /// <summary>
    /// One whole data message, compressed when permessage-deflate is on and it is long enough.
    /// False when a close of ours has gone out. A large plain payload is left in
    /// <see cref="DirectPayload"/> rather than copied.
    /// </summary>
    public bool WriteMessage(Opcode opcode, ReadOnlyMemory<byte> payload)
    {
        if (!CanSendData)
            return false;
        if (_deflate is not null && _deflate.ShouldCompress(payload.Length))
        {
            WriteCompressed(opcode, true, FrameHeader.Rsv1, payload.Span);
            return true;
        }
        if (_masks is null && payload.Length >= DirectPayloadThreshold)
        {
            int header = FrameHeader.Write(_output.GetSpan(FrameHeader.MaxLength), true, 0, opcode, payload.Length, null);
            _output.Advance(header);
            _direct = payload;
            return true;
        }
        WriteFrame(opcode, true, 0, payload.Span);
        return true;
    }

    /// <summary>One frame of a streamed message (compressed as one message: RSV1 on its first frame only, §6.1).</summary>
    public bool WriteFragment(Opcode opcode, bool fin, ReadOnlySpan<byte> payload)
    {
        if (!CanSendData)
            return false;
        if (_deflate is not null)
            WriteCompressed(opcode, fin, opcode == Opcode.Continuation ? (byte)0 : FrameHeader.Rsv1, payload);
        else
            WriteFrame(opcode, fin, 0, payload);
        return true;
    }

    /// <summary>
    /// The key of a shared compressed frame this connection can send for a prepared message:
    /// null to send the plain frame, or (when it keeps context) <c>Own</c> to compress for itself.
    /// </summary>
    public (bool Own, (int Bits, int Level, int MemoryLevel)? Shared) PreparedFrameChoice(int payloadLength)
    {
        if (_deflate is null || !_deflate.ShouldCompress(payloadLength))
            return (false, null);
        return _deflate.SharedFrameKey is { } key ? (false, key) : (true, null);
    }

    /// <summary>A ready, unmasked frame (a prepared message, server side). Large ones go direct.</summary>
    public bool WriteFrameBytes(ReadOnlyMemory<byte> frame)
    {
        if (!CanSendData)
            return false;
        if (frame.Length >= DirectPayloadThreshold)
            _direct = frame;
        else
            _output.Write(frame.Span);
        return true;
    }

    /// <summary>A ping (payload at most 125 bytes); false once our close has gone out.</summary>
    public bool WritePing(ReadOnlySpan<byte> payload)
    {
        if (State != ProtocolState.Open)
            return false;
        Volatile.Write(ref _pingSent, _settings.Time.GetTimestamp());
        WriteFrame(Opcode.Ping, true, 0, payload);
        return true;
    }

    /// <summary>Our close frame; false when one already went out (nothing follows a close frame).</summary>
    public bool WriteClose(CloseStatus status, string? reason)
    {
        Span<byte> payload = stackalloc byte[125];
        int length = CloseFrame.Write(payload, status, reason);
        if (!Transition(sent: true))
            return false;
        WriteFrame(Opcode.Close, true, 0, payload[..length]);
        return true;
    }

    private void WriteCompressed(Opcode opcode, bool fin, byte rsv, ReadOnlySpan<byte> payload)
    {
        var (buffer, length) = _deflate!.Compress(payload, fin);
        try
        {
            WriteFrame(opcode, fin, rsv, buffer.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void WriteFrame(Opcode opcode, bool fin, byte rsv, ReadOnlySpan<byte> payload)
    {
        bool masked = _masks is not null;
        var span = _output.GetSpan(FrameWriter.GetFrameLength(payload.Length, masked));
        _output.Advance(FrameWriter.WriteFrame(span, opcode, fin, rsv, payload, masked ? _masks!.Next() : null));
    }

    /// <summary>Frees the send half (the caller holds the send lock).</summary>
    public void DisposeSender()
    {
        _output.Clear();
        _direct = default;
        _deflate?.DisposeSender();
    }

    // ------------------------------------------------------------ timers

    /// <summary>
    /// What falls due now: the send timeout while a write waits for the peer; else the close
    /// timeout (from the first close frame either way, or from when ours was finally written),
    /// or a keep-alive ping or its timeout. <paramref name="peerIsRead"/> is false while nobody reads
    /// what the peer sends (a message read ahead waits for the application): then the peer
    /// cannot be judged and keep-alive waits.
    /// </summary>
    public TimerAction OnTimer(bool peerIsRead)
    {
        var state = State;
        if (state == ProtocolState.Closed)
            return TimerAction.None;
        var time = _settings.Time;
        long waitingSince = Volatile.Read(ref _writeWaitingSince);
        if (waitingSince != 0)
        {
            // A peer that reads slowly still gets what was written before the close (a 1013, say)
            // as long as it keeps within the send timeout; the close timeout starts after.
            return time.GetElapsedTime(waitingSince) > _settings.SendTimeout ? TimerAction.SendTimedOut : TimerAction.None;
        }
        long closeStarted = Volatile.Read(ref _closeStarted);
        if (closeStarted != 0)
            return time.GetElapsedTime(closeStarted) > _settings.CloseTimeout ? TimerAction.CloseTimedOut : TimerAction.None;
        if (!_settings.KeepAliveEnabled || state != ProtocolState.Open || !peerIsRead)
            return TimerAction.None;
        long lastReceived = Volatile.Read(ref _lastReceived);
        long pingSent = Volatile.Read(ref _pingSent);
        if (pingSent != 0 && pingSent > lastReceived)
            return time.GetElapsedTime(pingSent) > _settings.KeepAliveTimeout ? TimerAction.KeepAliveTimedOut : TimerAction.None;
        return time.GetElapsedTime(lastReceived) >= _settings.KeepAliveInterval ? TimerAction.SendPing : TimerAction.None;
    }
}

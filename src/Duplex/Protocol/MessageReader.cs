using System.Buffers;

namespace Duplex.Protocol;

/// <summary>What <see cref="MessageReader.Read"/> found.</summary>
internal enum ReadEvent
{
    /// <summary>More bytes are needed: fill <see cref="MessageReader.GetMemory"/> and call again.</summary>
    NeedMoreData,
    /// <summary>A whole data message: <see cref="MessageReader.MessageType"/> and <see cref="MessageReader.Payload"/>.</summary>
    Message,
    Ping,
    Pong,
    /// <summary>The peer's close frame: <see cref="MessageReader.CloseStatus"/> and <see cref="MessageReader.CloseReason"/>.</summary>
    Close,
    /// <summary>The peer broke the protocol: <see cref="MessageReader.Error"/>. Nothing more is read.</summary>
    Error,
}

/// <summary>
/// The receive half of the protocol, with no I/O: bytes in, events out. It owns one pooled
/// buffer; the I/O layer reads straight into <see cref="GetMemory"/>, so bytes are copied only
/// when a fragmented message is put back together. Frames are checked against every rule of
/// RFC 6455 §5 for this <see cref="Role"/>, unmasked in place, text is validated as it
/// arrives, and the message size limit is applied to frame headers before their payload comes.
/// A payload stays valid until the next call to <see cref="GetMemory"/> or <see cref="Read"/>.
/// </summary>
internal sealed class MessageReader : IDisposable
{
    private const int InitialBufferSize = 4096;
    private const int MinimumReadSize = 1024;
    private const int LargeBufferSize = 256 * 1024;

    private readonly Role _role;
    private readonly long _maxMessageSize;
    private byte[] _buffer = [];

    // Buffer layout: [_messageStart, _messageStart + _messageLength) holds the payload of the
    // message being assembled (unmasked and validated); [_parsed, _end) holds unread bytes.
    private int _messageStart, _messageLength, _parsed, _end;

    private bool _inMessage;         // a data frame without FIN has been seen
    private Opcode _messageOpcode;
    private bool _inFrame;           // a data frame's payload is still arriving
    private FrameHeader _frame;
    private long _frameRemaining;
    private long _frameOffset;       // payload bytes of this frame already unmasked
    private Utf8Validator _utf8;
    private bool _failed;
    private bool _closed;
    private bool _deliverCompressed;

    public MessageReader(Role role, long maxMessageSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessageSize);
        _role = role;
        _maxMessageSize = maxMessageSize;
    }

    /// <summary>RSV bits that a negotiated extension gives meaning to; any other set bit is an error.</summary>
    public byte AllowedRsv { get; set; }

    /// <summary>The largest message accepted; a bigger one fails with 1009 as soon as its header says so.</summary>
    public long MaxMessageSize => _maxMessageSize;

    public Opcode MessageType { get; private set; }

    /// <summary>The RSV bits of the message's first frame (for extensions).</summary>
    public byte MessageRsv { get; private set; }

    public ReadOnlyMemory<byte> Payload { get; private set; }

    public CloseStatus CloseStatus { get; private set; }

    public string CloseReason { get; private set; } = "";

    public ProtocolError Error { get; private set; }

    /// <summary>True when no partial message and no unread byte is held.</summary>
    public bool IsIdle => !_inMessage && !_inFrame && _end == _parsed;

    /// <summary>A buffer to receive into; at least one byte long. Call <see cref="Advance"/> with what was written.</summary>
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Payload = default;
        if (IsIdle && _buffer.Length > LargeBufferSize)
            ReleaseBufferIfIdle(); // a big message has gone: do not keep its buffer
        int want = Math.Max(sizeHint, MinimumReadSize);
        if (_inFrame)
        {
            // A large payload is coming: read it in big chunks. But the buffer grows only with
            // bytes that have arrived (to about twice what is held), never with what a header
            // declares: a peer that announces 16 MiB and sends 15 bytes costs 4 KiB, not 16 MiB.
            long rest = Math.Min(_frameRemaining, _maxMessageSize);
            long held = (_inMessage ? _messageLength : 0) + (_end - _parsed);
            want = (int)Math.Max(want, Math.Min(rest, Math.Max(held, InitialBufferSize)));
        }
        if (_buffer.Length - _end < want)
            MakeRoom(want);
        return _buffer.AsMemory(_end);
    }

    /// <summary>Records that <paramref name="count"/> bytes were written to the last <see cref="GetMemory"/>.</summary>
    public void Advance(int count)
    {
        if ((uint)count > (uint)(_buffer.Length - _end))
            throw new ArgumentOutOfRangeException(nameof(count));
        _end += count;
    }

    /// <summary>Copies bytes in (for tests and for bytes that arrived with the handshake).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var memory = GetMemory(data.Length).Span;
            int n = Math.Min(memory.Length, data.Length);
            data[..n].CopyTo(memory);
            Advance(n);
            data = data[n..];
        }
    }

    /// <summary>Returns the buffer to the pool when no bytes are held, so an idle connection costs little.</summary>
    public void ReleaseBufferIfIdle()
    {
        if (IsIdle && _buffer.Length > 0)
        {
            ReturnBuffer();
            _messageStart = _messageLength = _parsed = _end = 0;
        }
    }

    /// <summary>Turns buffered bytes into the next event.</summary>
    public ReadEvent Read()
    {
        Payload = default;
        if (_failed)
            return ReadEvent.Error;
        if (_closed)
            return ReadEvent.NeedMoreData;
        while (true)
        {
            if (!_inFrame)
            {
                var span = _buffer.AsSpan(_parsed, _end - _parsed);
                var status = FrameHeader.TryRead(span, out var header, out int headerLength);
                if (status == OperationStatus.NeedMoreData)
                    return ReadEvent.NeedMoreData;
                if (status != OperationStatus.Done)
                    return Fail(ProtocolError.Protocol("64-bit payload length has its top bit set"));
                if (CheckHeader(header) is ProtocolError error)
                    return Fail(error);
                if (OpcodeRules.IsControl(header.Opcode))
                {
                    if (span.Length < headerLength + header.PayloadLength)
                        return ReadEvent.NeedMoreData;
                    _parsed += headerLength + (int)header.PayloadLength;
                    return ReadControl(header, _buffer.AsMemory(_parsed - (int)header.PayloadLength, (int)header.PayloadLength));
                }
                _parsed += headerLength;
                StartDataFrame(header);
            }

            int available = (int)Math.Min(_end - _parsed, _frameRemaining);
            if (available > 0)
            {
                if (ConsumePayload(available) is ProtocolError error)
                    return Fail(error);
            }
            if (_frameRemaining > 0)
                return ReadEvent.NeedMoreData;
            _inFrame = false;
            if (_frame.Fin)
                return FinishMessage();
        }
    }

    private ProtocolError? CheckHeader(in FrameHeader header)
    {
        if ((header.Rsv & ~AllowedRsv) != 0)
            return ProtocolError.Protocol("reserved bits set without a negotiated extension");
        if (!OpcodeRules.IsKnown(header.Opcode))
            return ProtocolError.Protocol($"reserved opcode 0x{(byte)header.Opcode:X}");
        if (header.Masked != (_role == Role.Server))
            return ProtocolError.Protocol(_role == Role.Server ? "client frame is not masked" : "server frame is masked");
        if (OpcodeRules.IsControl(header.Opcode))
        {
            if (!header.Fin)
                return ProtocolError.Protocol("fragmented control frame");
            if (header.PayloadLength > 125)
                return ProtocolError.Protocol("control frame payload over 125 bytes");
            if (header.Rsv != 0)
                return ProtocolError.Protocol("reserved bits set on a control frame");
            return null;
        }
        if (header.Opcode == Opcode.Continuation)
        {
            if (!_inMessage)
                return ProtocolError.Protocol("continuation frame with no message to continue");
            if (header.Rsv != 0)
                return ProtocolError.Protocol("reserved bits set on a continuation frame");
        }
        else if (_inMessage)
        {
            return ProtocolError.Protocol("new data frame inside an unfinished message");
        }
        // A compressed message may be a little longer than what it inflates to (incompressible
        // data grows by up to about 0.25% in zlib); its inflated size is held to the limit exactly.
        bool compressed = header.Opcode == Opcode.Continuation ? _deliverCompressed : (header.Rsv & FrameHeader.Rsv1) != 0;
        long limit = compressed ? _maxMessageSize + _maxMessageSize / 256 + 1024 : _maxMessageSize;
        if (_messageLength + header.PayloadLength > limit || header.PayloadLength > limit)
            return new ProtocolError(CloseStatus.MessageTooBig, $"message over the {_maxMessageSize}-byte limit");
        return null;
    }

    private void StartDataFrame(in FrameHeader header)
    {
        if (header.Opcode != Opcode.Continuation)
        {
            _inMessage = true;
            _messageOpcode = header.Opcode;
            MessageRsv = header.Rsv;
            _messageStart = _parsed;
            _messageLength = 0;
            _utf8.Reset();
            // A compressed message is validated after it is inflated, not here.
            _deliverCompressed = header.Rsv != 0;
        }
        _frame = header;
        _inFrame = true;
        _frameRemaining = header.PayloadLength;
        _frameOffset = 0;
    }

    private ProtocolError? ConsumePayload(int count)
    {
        var chunk = _buffer.AsSpan(_parsed, count);
        if (_frame.Masked)
            Masking.Apply(chunk, _frame.MaskKey, _frameOffset);
        if (_messageOpcode == Opcode.Text && !_deliverCompressed && !_utf8.Append(chunk))
            return ProtocolError.InvalidUtf8("text message is not valid UTF-8");
        int destination = _messageStart + _messageLength;
        if (destination != _parsed)
            chunk.CopyTo(_buffer.AsSpan(destination));
        _messageLength += count;
        _parsed += count;
        _frameOffset += count;
        _frameRemaining -= count;
        return null;
    }

    private ReadEvent FinishMessage()
    {
        if (_messageOpcode == Opcode.Text && !_deliverCompressed && !_utf8.IsComplete)
            return Fail(ProtocolError.InvalidUtf8("text message ends inside a UTF-8 sequence"));
        _inMessage = false;
        MessageType = _messageOpcode;
        Payload = _buffer.AsMemory(_messageStart, _messageLength);
        _messageLength = 0;
        return ReadEvent.Message;
    }

    private ReadEvent ReadControl(in FrameHeader header, Memory<byte> payload)
    {
        if (header.Masked)
            Masking.Apply(payload.Span, header.MaskKey);
        Payload = payload;
        switch (header.Opcode)
        {
            case Opcode.Ping:
                return ReadEvent.Ping;
            case Opcode.Pong:
                return ReadEvent.Pong;
            default:
                if (!CloseFrame.TryParse(payload.Span, out var status, out var reason, out var error))
                    return Fail(error);
                CloseStatus = status;
                CloseReason = reason;
                _closed = true;
                return ReadEvent.Close;
        }
    }

    private ReadEvent Fail(ProtocolError error)
    {
        Error = error;
        _failed = true;
        Payload = default;
        return ReadEvent.Error;
    }

    private void MakeRoom(int want)
    {
        int kept = (_inMessage ? _messageLength : 0) + (_end - _parsed);
        byte[] target = _buffer;
        if (kept + want > _buffer.Length)
        {
            long size = Math.Max(InitialBufferSize, (long)_buffer.Length * 2);
            while (size < kept + want)
                size *= 2;
            target = ArrayPool<byte>.Shared.Rent((int)Math.Min(size, Array.MaxLength));
        }
        MoveKeptBytes(target);
        if (!ReferenceEquals(target, _buffer))
        {
            ReturnBuffer();
            _buffer = target;
        }
    }

    // Keeps only what is still needed, moved to the front of target: the message being
    // assembled and the unread bytes. Control frames and headers between fragments drop out.
    private void MoveKeptBytes(byte[] target)
    {
        int unread = _end - _parsed;
        int at = 0;
        if (_inMessage)
        {
            _buffer.AsSpan(_messageStart, _messageLength).CopyTo(target);
            _messageStart = 0;
            at = _messageLength;
        }
        _buffer.AsSpan(_parsed, unread).CopyTo(target.AsSpan(at));
        _parsed = at;
        _end = at + unread;
    }

    /// <summary>
    /// Gives the buffer away (to a payload lent from it, which must stay intact) and goes on in a
    /// fresh one that holds copies of what is still needed. The caller owns the returned array.
    /// </summary>
    public byte[] DetachBuffer()
    {
        Payload = default;
        var old = _buffer;
        int kept = (_inMessage ? _messageLength : 0) + (_end - _parsed);
        if (kept == 0)
        {
            _buffer = [];
            _messageStart = _messageLength = _parsed = _end = 0;
            return old;
        }
        var target = ArrayPool<byte>.Shared.Rent(Math.Max(InitialBufferSize, kept));
        MoveKeptBytes(target);
        _buffer = target;
        return old;
    }

    private void ReturnBuffer()
    {
        if (_buffer.Length > 0)
            ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    public void Dispose()
    {
        Payload = default;
        ReturnBuffer();
        _messageStart = _messageLength = _parsed = _end = 0;
    }

    /// <summary>The size of the buffer held now (0 when released).</summary>
    public int BufferCapacity => _buffer.Length;
}

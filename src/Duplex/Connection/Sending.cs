using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using Duplex.Protocol;

namespace Duplex;

// The public send API. Every send takes the send lock, lets the protocol write its frame into
// the output, and then follows the one flush policy (Output.cs).
public sealed partial class WebSocketConnection
{
    private AsyncLock? _messageLock;    // one streamed data message at a time; made on first use
    private volatile bool _streaming;   // a MessageWriter's message is open
    // Bytes of sends waiting for a slow peer: queued behind the send lock, or in a write that did
    // not finish at once. Sends that complete synchronously (the common case) never touch it.
    private long _pendingSendBytes;

    private AsyncLock MessageLock
    {
        get
        {
            if (_messageLock is null)
                Interlocked.CompareExchange(ref _messageLock, new AsyncLock(), null);
            return _messageLock!;
        }
    }

    /// <summary>Sends a text message.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendTextAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        int length = Encoding.UTF8.GetByteCount(text);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Encoding.UTF8.GetBytes(text, buffer);
            await SendAsync(SendKind.Message, Opcode.Text, buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Sends a text message given as UTF-8 bytes; throws <see cref="ArgumentException"/> if they are not valid UTF-8.</summary>
    public ValueTask SendTextAsync(ReadOnlyMemory<byte> utf8, CancellationToken cancellationToken = default)
    {
        if (!Utf8Validator.IsValid(utf8.Span))
            throw new ArgumentException("Text messages must be valid UTF-8.", nameof(utf8));
        return SendAsync(SendKind.Message, Opcode.Text, utf8, cancellationToken);
    }

    /// <summary>Sends a binary message.</summary>
    public ValueTask SendBinaryAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        SendAsync(SendKind.Message, Opcode.Binary, data, cancellationToken);

    /// <summary>Sends a message of the given type (text must be valid UTF-8).</summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> payload, MessageType type, CancellationToken cancellationToken = default) => type switch
    {
        MessageType.Text => SendTextAsync(payload, cancellationToken),
        MessageType.Binary => SendBinaryAsync(payload, cancellationToken),
        _ => throw new ArgumentOutOfRangeException(nameof(type), "Send a close with CloseAsync."),
    };

    /// <summary>
    /// Sends a prepared message: on a server connection, the shared frame bytes (compressed once
    /// for all connections whose negotiation allows it); on a client, a normal send.
    /// </summary>
    public ValueTask SendAsync(PreparedMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (Role == Role.Client)
            return SendAsync(message.Payload, message.Type, cancellationToken);
        var (own, shared) = _protocol.PreparedFrameChoice(message.Payload.Length);
        if (own)
            return SendAsync(message.Payload, message.Type, cancellationToken); // this connection's own context
        byte[] frame = shared is { } key ? message.CompressedFrame(key.Bits, key.Level, key.MemoryLevel) : message.PlainFrame;
        Diagnostics.DuplexMeter.MessageSent(message.Payload.Length);
        return SendAsync(SendKind.FrameBytes, default, frame, cancellationToken);
    }

    /// <summary>Sends a ping (payload at most 125 bytes). The peer's pong arrives through <see cref="PongReceived"/>.</summary>
    public ValueTask PingAsync(ReadOnlyMemory<byte> payload = default, CancellationToken cancellationToken = default)
    {
        if (payload.Length > 125)
            throw new ArgumentException("A ping payload is at most 125 bytes.", nameof(payload));
        return SendAsync(SendKind.Ping, Opcode.Ping, payload, cancellationToken);
    }

    /// <summary>
    /// Starts a message whose length is not known yet: each write sends a frame, and
    /// <see cref="MessageWriter.CompleteAsync"/> ends the message. Other data messages wait
    /// until it is done; pings and pongs may still go between its frames.
    /// </summary>
    public async ValueTask<MessageWriter> BeginMessageAsync(MessageType type, CancellationToken cancellationToken = default)
    {
        if (type is not (MessageType.Text or MessageType.Binary))
            throw new ArgumentOutOfRangeException(nameof(type));
        ThrowIfCannotSend();
        await MessageLock.EnterAsync(cancellationToken).ConfigureAwait(false);
        _streaming = true;
        return new MessageWriter(this, (Opcode)type);
    }

    // Called by MessageWriter, which holds the message lock.
    internal ValueTask SendFragmentAsync(Opcode opcode, bool fin, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) =>
        SendAsync(fin ? SendKind.LastFragment : SendKind.Fragment, opcode, payload, cancellationToken);

    internal void ReleaseMessage()
    {
        _streaming = false;
        MessageLock.Exit();
    }

    private enum SendKind : byte
    {
        Message,        // a whole data message
        FrameBytes,     // a whole data message, framed already (prepared)
        Ping,
        Fragment,       // a frame of a streamed message (the caller holds the message lock)
        LastFragment,
    }

    // Under the send lock: the protocol writes the frame; false when a close of ours went out.
    private bool WriteLocked(SendKind kind, Opcode opcode, ReadOnlyMemory<byte> payload) => kind switch
    {
        SendKind.Message => _protocol.WriteMessage(opcode, payload),
        SendKind.FrameBytes => _protocol.WriteFrameBytes(payload),
        SendKind.Ping => _protocol.WritePing(payload.Span),
        _ => _protocol.WriteFragment(opcode, kind == SendKind.LastFragment, payload.Span),
    };

    // A data message must not go between the frames of a streamed one; control frames and the
    // streamed message's own frames may.
    private bool WaitsForStreamedMessage(SendKind kind) => kind is SendKind.Message or SendKind.FrameBytes && _streaming;

    // The common case without a single await: the lock is free, and the flush (if one is due
    // now) completes at once.
    private ValueTask SendAsync(SendKind kind, Opcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (kind is SendKind.Message or SendKind.LastFragment)
            Diagnostics.DuplexMeter.MessageSent(payload.Length);
        else if (kind == SendKind.Fragment)
            Diagnostics.DuplexMeter.FragmentSent(payload.Length);
        if (WaitsForStreamedMessage(kind) || !_sendLock.TryEnter())
            return SendSlowAsync(kind, opcode, payload, cancellationToken);
        if (WaitsForStreamedMessage(kind))
        {
            _sendLock.Exit();
            return SendSlowAsync(kind, opcode, payload, cancellationToken);
        }
        return WriteAndFlushLocked(kind, opcode, payload, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendSlowAsync(SendKind kind, Opcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        ThrowIfCannotSend();
        AddPendingSendBytes(payload.Length);
        try
        {
            await SendWhenFreeAsync(kind, opcode, payload, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Add(ref _pendingSendBytes, -payload.Length);
        }
    }

    // Counts bytes waiting for the peer; past MaxPendingSendBytes the peer is too slow: dropped (1013).
    private void AddPendingSendBytes(long count)
    {
        if (Interlocked.Add(ref _pendingSendBytes, count) <= Options.MaxPendingSendBytes || count == 0)
            return;
        Interlocked.Add(ref _pendingSendBytes, -count);
        Terminate(Protocol.CloseStatus.TryAgainLater, $"too slow: over {Options.MaxPendingSendBytes} bytes wait for the peer to read");
        throw CannotSend();
    }

    private async ValueTask SendWhenFreeAsync(SendKind kind, Opcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        bool messageLock = false;
        if (kind is SendKind.Message or SendKind.FrameBytes)
        {
            // Wait for a streamed message to end (on the message lock), then for the send lock.
            await _sendLock.EnterAsync(cancellationToken).ConfigureAwait(false);
            if (_streaming)
            {
                _sendLock.Exit();
                await MessageLock.EnterAsync(cancellationToken).ConfigureAwait(false);
                messageLock = true;
                try
                {
                    await _sendLock.EnterAsync(cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    MessageLock.Exit();
                    throw;
                }
            }
        }
        else
        {
            await _sendLock.EnterAsync(cancellationToken).ConfigureAwait(false);
        }
        try
        {
            await WriteAndFlushLocked(kind, opcode, payload, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (messageLock)
                MessageLock.Exit();
        }
    }

    // Owns the send lock and releases it, now or when the flush completes.
    private ValueTask WriteAndFlushLocked(SendKind kind, Opcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        ValueTask flush;
        try
        {
            if (IsClosed || !WriteLocked(kind, opcode, payload))
                throw CannotSend();
            flush = FlushLocked(cancellationToken, mayCork: true);
            if (flush.IsCompletedSuccessfully)
            {
                flush.GetAwaiter().GetResult();
                _sendLock.Exit();
                return default;
            }
        }
        catch (Exception e)
        {
            // Failures come back in the task, never thrown from the call itself.
            _sendLock.Exit();
            return ValueTask.FromException(IsSendFailure(e) ? SendFailed(e) : e);
        }
        return ReleaseAfterAsync(flush, payload.Length);
    }

    private void ThrowIfCannotSend()
    {
        if (IsClosed || !_protocol.CanSendData)
            throw CannotSend();
    }

    private WebSocketClosedException CannotSend() => IsClosed
        ? new WebSocketClosedException($"The connection is closed ({(int?)_protocol.CloseStatus} {_protocol.CloseReason}).")
        : new WebSocketClosedException("The connection is closing: a close frame has been sent.");
}

using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using Duplex.Protocol;

namespace Duplex;

// The send half. Frames up to OutputLimit are written into one output buffer; the buffer goes
// to the socket in one write when nothing more is about to be sent, which is "corking": while
// the receive buffer still holds frames, the application is likely to answer them, so the
// flush waits until the receive loop is about to block (or until a work item queued behind the
// current one runs, whichever is first). An echo of 16 queued messages is then one write call,
// not 16. Larger frames flush what is gathered and go out on their own.
public sealed partial class WebSocketConnection
{
    private const int OutputLimit = 64 * 1024;
    private const int MinimumOutput = 4096;

    private byte[]? _output;           // rented while frames wait to be written; returned after the flush
    private int _outputLength;
    private int _flushScheduled;
    private volatile bool _streaming;   // a MessageWriter's message is open

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
            await SendMessageAsync(Opcode.Text, buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
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
        return SendMessageAsync(Opcode.Text, utf8, cancellationToken);
    }

    /// <summary>Sends a binary message.</summary>
    public ValueTask SendBinaryAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        SendMessageAsync(Opcode.Binary, data, cancellationToken);

    /// <summary>Sends a message of the given type (text must be valid UTF-8).</summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> payload, MessageType type, CancellationToken cancellationToken = default) => type switch
    {
        MessageType.Text => SendTextAsync(payload, cancellationToken),
        MessageType.Binary => SendBinaryAsync(payload, cancellationToken),
        _ => throw new ArgumentOutOfRangeException(nameof(type), "Send a close with CloseAsync."),
    };

    /// <summary>Sends a ping (payload at most 125 bytes). The peer's pong arrives through <see cref="PongReceived"/>.</summary>
    public ValueTask PingAsync(ReadOnlyMemory<byte> payload = default, CancellationToken cancellationToken = default)
    {
        if (payload.Length > 125)
            throw new ArgumentException("A ping payload is at most 125 bytes.", nameof(payload));
        return SendControlAsync(Opcode.Ping, payload, cancellationToken);
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

    // Called by MessageWriter, which holds _messageLock.
    internal async ValueTask SendFragmentAsync(Opcode opcode, bool fin, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        await _frameLock.EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_deflate is null)
            {
                await WriteFrameLockedAsync(opcode, fin, payload, cancellationToken).ConfigureAwait(false);
                return;
            }
            // A streamed message is compressed as a whole: RSV1 on its first frame only (§6.1).
            ThrowIfCannotSend();
            var (buffer, length) = CompressFragment(payload.Span, fin);
            try
            {
                byte rsv = opcode == Opcode.Continuation ? (byte)0 : FrameHeader.Rsv1;
                await WriteFrameLockedAsync(opcode, fin, buffer.AsMemory(0, length), cancellationToken, rsv).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        finally
        {
            _frameLock.Exit();
        }
    }

    internal void ReleaseMessage()
    {
        _streaming = false;
        MessageLock.Exit();
    }

    // The common case without a single await: the lock is free, the frame fits in the output
    // buffer, and the flush (if one is due now) completes at once.
    private ValueTask SendMessageAsync(Opcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (ShouldCompress(payload.Length))
            return SendMessageSlowAsync(opcode, payload, cancellationToken);
        if (_streaming || !_frameLock.TryEnter())
            return SendMessageSlowAsync(opcode, payload, cancellationToken);
        bool release = true;
        try
        {
            if (_streaming || _terminated || _closeSent)
            {
                _frameLock.Exit();
                release = false;
                return SendMessageSlowAsync(opcode, payload, cancellationToken);
            }
            bool masked = _masks is not null;
            int total = FrameHeader.GetLength(payload.Length, masked) + payload.Length;
            if (total > OutputLimit || !TryReserveOutput(total))
            {
                _frameLock.Exit();
                release = false;
                return SendMessageSlowAsync(opcode, payload, cancellationToken);
            }
            _outputLength += FrameWriter.WriteFrame(_output.AsSpan(_outputLength), opcode, true, 0, payload.Span, masked ? _masks!.Next() : null);
            if (_reader.Buffered > 0)
            {
                ScheduleFlush(); // the application will likely answer the frames still to be read
                return default;
            }
            var write = _stream.WriteAsync(_output.AsMemory(0, _outputLength), cancellationToken);
            if (!write.IsCompletedSuccessfully)
            {
                release = false;
                return CompleteFlushAsync(write);
            }
            write.GetAwaiter().GetResult();
            ReturnOutput();
            return default;
        }
        catch (Exception e) when (IsSendFailure(e))
        {
            throw SendFailed(e);
        }
        finally
        {
            if (release)
                _frameLock.Exit();
        }
    }

    // Finishes a flush that did not complete at once; owns _frameLock and releases it.
    private async ValueTask CompleteFlushAsync(ValueTask write)
    {
        try
        {
            await write.ConfigureAwait(false);
            ReturnOutput();
        }
        catch (Exception e) when (IsSendFailure(e))
        {
            throw SendFailed(e);
        }
        finally
        {
            _frameLock.Exit();
        }
    }

    private void ReturnOutput()
    {
        var output = _output;
        _outputLength = 0;
        _output = null;
        if (output is not null)
            ArrayPool<byte>.Shared.Return(output);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendMessageSlowAsync(Opcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        ThrowIfCannotSend();
        bool messageLock = await EnterForMessageAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteMessageLockedAsync(opcode, payload, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ExitForMessage(messageLock);
        }
    }

    // Takes _frameLock for a whole data message. When a streamed message is open, no data frame
    // may go between its frames, so this first waits for its end on the message lock; true then,
    // and ExitForMessage releases both.
    private async ValueTask<bool> EnterForMessageAsync(CancellationToken cancellationToken)
    {
        await _frameLock.EnterAsync(cancellationToken).ConfigureAwait(false);
        if (!_streaming)
            return false;
        _frameLock.Exit();
        await MessageLock.EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _frameLock.EnterAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            MessageLock.Exit();
            throw;
        }
        return true;
    }

    private void ExitForMessage(bool messageLock)
    {
        _frameLock.Exit();
        if (messageLock)
            MessageLock.Exit();
    }

    // Under _frameLock: one whole data message, compressed when permessage-deflate is on and
    // the message is long enough (compressed here, in send order, as context takeover needs).
    private async ValueTask WriteMessageLockedAsync(Opcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (!ShouldCompress(payload.Length))
        {
            await WriteFrameLockedAsync(opcode, fin: true, payload, cancellationToken).ConfigureAwait(false);
            return;
        }
        ThrowIfCannotSend();
        var (buffer, length) = Compress(payload.Span, final: true);
        try
        {
            await WriteFrameLockedAsync(opcode, fin: true, buffer.AsMemory(0, length), cancellationToken, FrameHeader.Rsv1).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendControlAsync(Opcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        ThrowIfCannotSend();
        await _frameLock.EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteFrameLockedAsync(opcode, fin: true, payload, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _frameLock.Exit();
        }
    }

    // Under _frameLock: gathers the frame, then flushes unless more is about to be sent.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteFrameLockedAsync(Opcode opcode, bool fin, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken, byte rsv = 0)
    {
        // A close may have gone out while we waited: nothing follows a close frame.
        ThrowIfCannotSend();
        try
        {
            await AppendFrameAsync(opcode, fin, payload, cancellationToken, rsv).ConfigureAwait(false);
            await FlushOrDeferAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsSendFailure(e))
        {
            throw SendFailed(e);
        }
    }

    // Under _frameLock: puts a frame in the output buffer, or sends a large one straight away.
    private async ValueTask AppendFrameAsync(Opcode opcode, bool fin, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken, byte rsv = 0)
    {
        bool masked = _masks is not null;
        int total = FrameHeader.GetLength(payload.Length, masked) + payload.Length;
        if (total <= OutputLimit)
        {
            if (!TryReserveOutput(total))
            {
                await FlushLockedAsync(cancellationToken).ConfigureAwait(false);
                TryReserveOutput(total);
            }
            _outputLength += FrameWriter.WriteFrame(_output.AsSpan(_outputLength), opcode, fin, rsv, payload.Span, masked ? _masks!.Next() : null);
            return;
        }
        if (_outputLength > 0)
            await FlushLockedAsync(cancellationToken).ConfigureAwait(false);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(FrameHeader.MaxLength + Math.Min(payload.Length, OutputLimit));
        try
        {
            uint? key = masked ? _masks!.Next() : null;
            int header = FrameHeader.Write(chunk, fin, rsv, opcode, payload.Length, key);
            if (key is null)
            {
                // Unmasked: send the payload from the caller's memory, no copy.
                await _stream.WriteAsync(chunk.AsMemory(0, header), cancellationToken).ConfigureAwait(false);
                await _stream.WriteAsync(payload, cancellationToken).ConfigureAwait(false);
                return;
            }
            int offset = 0, at = header;
            while (offset < payload.Length)
            {
                int n = Math.Min(payload.Length - offset, chunk.Length - at);
                Masking.ApplyCopy(payload.Span.Slice(offset, n), chunk.AsSpan(at, n), key.Value, offset);
                await _stream.WriteAsync(chunk.AsMemory(0, at + n), cancellationToken).ConfigureAwait(false);
                offset += n;
                at = 0;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    // Under _frameLock: a ready frame (a prepared broadcast) into the output buffer, or, when
    // large, straight to the stream after what was gathered before it.
    private async ValueTask AppendFrameBytesAsync(byte[] frame, CancellationToken cancellationToken)
    {
        if (frame.Length > OutputLimit)
        {
            if (_outputLength > 0)
                await FlushLockedAsync(cancellationToken).ConfigureAwait(false);
            await _stream.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (!TryReserveOutput(frame.Length))
        {
            await FlushLockedAsync(cancellationToken).ConfigureAwait(false);
            TryReserveOutput(frame.Length);
        }
        frame.CopyTo(_output.AsSpan(_outputLength));
        _outputLength += frame.Length;
    }

    // Under _frameLock: room for `total` more bytes in the output buffer (renting one if none is
    // held). False while what is gathered must go out first.
    private bool TryReserveOutput(int total)
    {
        if (_output is not null)
            return _outputLength + total <= _output.Length;
        _output = ArrayPool<byte>.Shared.Rent(Math.Max(MinimumOutput, total));
        return true;
    }

    // Under _frameLock: while frames wait to be read, the application will likely answer them,
    // so the flush is left to the receive loop (or the queued work item); otherwise now.
    private ValueTask FlushOrDeferAsync(CancellationToken cancellationToken)
    {
        if (_outputLength == 0)
            return default; // a large frame went out directly
        if (_reader.Buffered > 0)
        {
            ScheduleFlush();
            return default;
        }
        return FlushLockedAsync(cancellationToken);
    }

    // Under _frameLock: writes what was gathered and gives the buffer back, so an idle connection holds none.
    private async ValueTask FlushLockedAsync(CancellationToken cancellationToken)
    {
        if (_output is null)
            return;
        if (_outputLength > 0)
            await _stream.WriteAsync(_output.AsMemory(0, _outputLength), cancellationToken).ConfigureAwait(false);
        ReturnOutput();
    }

    // From the receive loop before it blocks: flush unless a sender holds the lock (it then
    // flushes or schedules a flush itself, and waiting here could deadlock with a peer that
    // is itself blocked writing to us).
    private async ValueTask TryFlushAsync()
    {
        if (!_frameLock.TryEnter())
            return;
        try
        {
            await FlushLockedAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            Abort();
        }
        finally
        {
            _frameLock.Exit();
        }
    }

    private void ScheduleFlush()
    {
        if (Interlocked.Exchange(ref _flushScheduled, 1) == 0)
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);
    }

    // The safety net of corking: runs after the work that gathered the frames, in case the
    // application does not come back to receive.
    // Unlike the receive loop, it waits for the lock: a sender that holds it may already have
    // counted on this flush, and would otherwise leave its frames unsent.
    void IThreadPoolWorkItem.Execute()
    {
        Volatile.Write(ref _flushScheduled, 0);
        if (_outputLength > 0)
            _ = FlushWhenFreeAsync();
    }

    private async Task FlushWhenFreeAsync()
    {
        try
        {
            await _frameLock.EnterAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            return;
        }
        try
        {
            if (!_terminated)
                await FlushLockedAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            Abort();
        }
        finally
        {
            _frameLock.Exit();
        }
    }

    private static bool IsSendFailure(Exception e) =>
        e is IOException or SocketException or ObjectDisposedException or OperationCanceledException;

    // A frame may be half written: the stream cannot be used again. Cancellation stays itself;
    // a broken stream becomes the one exception senders see.
    private Exception SendFailed(Exception e)
    {
        Abort();
        return e is OperationCanceledException ? e : new WebSocketClosedException("The connection was lost while sending.", e);
    }

    private void ThrowIfCannotSend()
    {
        if (_terminated)
            throw new WebSocketClosedException($"The connection is closed ({(int)_closeStatus} {_closeReason}).");
        if (_closeSent)
            throw new WebSocketClosedException("The connection is closing: a close frame has been sent.");
    }
}

using System.Runtime.CompilerServices;
using Duplex.Protocol;
using Duplex.Transport;

namespace Duplex;

// The way out for bytes. The protocol gathers frames in one output buffer; FlushLocked is the
// only place they are written to the transport, under the send lock, with one policy:
//   on an event loop thread in the middle of a turn, the output waits for the end of the turn
//   (corking: every connection written to during the turn is flushed once, by the loop);
//   anywhere else, or when a large payload must go straight out, it is written now.
public sealed partial class WebSocketConnection : ICorked
{
    private const int CorkLimit = 64 * 1024;   // gathered past this, the output goes now

    private readonly AsyncLock _sendLock = new();
    private bool _corked;                      // under the send lock: this connection waits in a loop's corked list

    // Under the send lock. Completes synchronously when the transport takes everything at once;
    // otherwise the returned task finishes the write (the caller keeps the lock until then).
    private ValueTask FlushLocked(CancellationToken cancellationToken, bool mayCork)
    {
        if (_protocol.OwesFrames)
            _protocol.WriteOwedFrames(); // a pong or close echo owed by the receive half goes with this flush
        // A close never waits: the transport may end right after it.
        if (mayCork && _protocol.CanSendData && _protocol.DirectPayload.IsEmpty && _protocol.Output.Length < CorkLimit)
        {
            if (_corked)
                return default;
            if (LoopTurn.TryCork(this))
            {
                _corked = true;
                return default;
            }
        }
        var pending = _protocol.Output.Pending;
        if (_protocol.DirectPayload.IsEmpty)
        {
            if (pending.IsEmpty)
                return default;
            var write = _transport.WriteAsync(pending, cancellationToken);
            if (!write.IsCompletedSuccessfully)
            {
                _protocol.WriteWaiting();
                return FinishWriteAsync(write, cancellationToken);
            }
            write.GetAwaiter().GetResult();
            _protocol.OutputWritten();
            return default;
        }
        _protocol.WriteWaiting(); // a direct payload is large: assume it waits (the timeout resets when it is written)
        return FinishWriteAsync(pending.IsEmpty ? default : _transport.WriteAsync(pending, cancellationToken), cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FinishWriteAsync(ValueTask write, CancellationToken cancellationToken)
    {
        try
        {
            await write.ConfigureAwait(false);
            if (!_protocol.DirectPayload.IsEmpty)
                await _transport.WriteAsync(_protocol.DirectPayload, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _protocol.OutputWritten();
        }
    }

    // Finishes a flush that did not complete at once; owns the send lock and releases it. The
    // send's bytes count as waiting for the peer until then.
    private async ValueTask ReleaseAfterAsync(ValueTask flush, long sendBytes = 0)
    {
        try
        {
            AddPendingSendBytes(sendBytes);
        }
        catch
        {
            _sendLock.Exit();
            throw;
        }
        try
        {
            await flush.ConfigureAwait(false);
        }
        catch (Exception e) when (IsSendFailure(e))
        {
            throw SendFailed(e);
        }
        finally
        {
            Interlocked.Add(ref _pendingSendBytes, -sendBytes);
            _sendLock.Exit();
        }
    }

    // From the event loop at the end of the turn in which this connection was written to.
    void ICorked.FlushCorked()
    {
        if (_sendLock.TryEnter())
            FlushCorkedLocked();
        else
            _ = FlushCorkedWhenFreeAsync(); // a sender on another thread holds it: rare
    }

    private async Task FlushCorkedWhenFreeAsync()
    {
        await _sendLock.EnterAsync().ConfigureAwait(false);
        FlushCorkedLocked();
    }

    // Owns the send lock and releases it, now or when the write completes.
    private void FlushCorkedLocked()
    {
        _corked = false;
        ValueTask flush;
        try
        {
            flush = IsClosed ? default : FlushLocked(CancellationToken.None, mayCork: false);
            if (flush.IsCompletedSuccessfully)
            {
                flush.GetAwaiter().GetResult();
                _sendLock.Exit();
                return;
            }
        }
        catch (Exception e) when (IsSendFailure(e))
        {
            _sendLock.Exit();
            Abort();
            return;
        }
        _ = FlushCorkedSlowAsync(flush);
    }

    private async Task FlushCorkedSlowAsync(ValueTask flush)
    {
        try
        {
            await ReleaseAfterAsync(flush).ConfigureAwait(false);
        }
        catch (WebSocketClosedException)
        {
        }
    }

    // What the receive half owes (a pong, the close echo, a failure's close), sent now.
    private async ValueTask SendOwedFramesAsync()
    {
        if (!_protocol.OwesFrames)
            return;
        await _sendLock.EnterAsync().ConfigureAwait(false);
        try
        {
            await FlushLocked(CancellationToken.None, mayCork: true).ConfigureAwait(false);
        }
        catch (Exception e) when (IsSendFailure(e))
        {
            Abort();
        }
        finally
        {
            _sendLock.Exit();
        }
    }

    // Our close frame, once, with anything gathered before it, written now. A peer that does not
    // read may block the write: the close timeout then aborts the connection.
    private async ValueTask SendCloseAsync(CloseStatus status, string? reason)
    {
        await _sendLock.EnterAsync().ConfigureAwait(false);
        try
        {
            if (IsClosed || !_protocol.WriteClose(status, reason))
                return;
            await FlushLocked(CancellationToken.None, mayCork: false).ConfigureAwait(false);
        }
        catch (Exception e) when (IsSendFailure(e))
        {
            Abort();
        }
        finally
        {
            _sendLock.Exit();
        }
    }

    private static bool IsSendFailure(Exception e) => Transport.Transport.IsFailure(e) || e is OperationCanceledException;

    // A frame may be half written: the transport cannot be used again. Cancellation stays
    // itself; a broken transport becomes the one exception senders see.
    private Exception SendFailed(Exception e)
    {
        Abort();
        return e is OperationCanceledException ? e : new WebSocketClosedException("The connection was lost while sending.", e);
    }
}

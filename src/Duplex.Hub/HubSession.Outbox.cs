using System.Text.Json;
using System.Text.RegularExpressions;
using Duplex.Protocol;

namespace Duplex.Hub;

// The bounded outbox: what is sent to this client leaves in order, written at once when the
// connection is idle, else queued for the writer loop; over the bound the client is closed with 1013.
internal sealed partial class HubSession
{
    // Guards the queue, its byte count, _overflowed, _writing and _wake. A Lock rather than a
    // monitor: it is taken twice per delivery, and its managed fast path costs less.
    private readonly Lock _outboxLock = new();
    private readonly Queue<PreparedMessage> _queue = new();
    private long _queuedBytes;
    private bool _overflowed;
    private TaskCompletionSource? _wake;

    public void Send(byte[] json) => Send(PreparedMessage.Create(json, MessageType.Text));

    /// <summary>
    /// Sends a message to this client: at once when nothing else is being sent to it (so a
    /// fan-out is one non-blocking write per subscriber, with no thread hop), otherwise through
    /// its queue. A replay of history on join is not held to the queue's limits: it is bounded by
    /// the history itself, and the queue only refers to messages the history keeps anyway.
    /// </summary>
    public void Send(PreparedMessage message, bool replay = false)
    {
        TaskCompletionSource? wake = null;
        bool direct = false, dropped;
        lock (_outboxLock)
        {
            if (_overflowed)
                return;
            var options = _hub.Options;
            dropped = !replay && (_queue.Count + 1 > options.MaxQueuedMessages || _queuedBytes + message.Payload.Length > options.MaxQueuedBytes);
            if (dropped)
                DropSlowLocked();
            else if (!_writing && _queue.Count == 0)
            {
                _writing = true;
                direct = true;
            }
            else
            {
                _queue.Enqueue(message);
                if (!replay)
                    _queuedBytes += message.Payload.Length;
                wake = _wake;
                _wake = null;
            }
        }
        if (dropped)
            CloseSlow();
        else if (direct)
            SendDirect(message);
        else
            wake?.TrySetResult();
    }

    /// <summary>A slow consumer: dropped now (1013); it recovers what it missed with `since`.</summary>
    internal void DropSlow()
    {
        lock (_outboxLock)
        {
            if (_overflowed)
                return;
            DropSlowLocked();
        }
        CloseSlow();
    }

    // Under the queue's lock: what is queued goes, the writer loop ends, the close goes next.
    private void DropSlowLocked()
    {
        _overflowed = true;
        _queue.Clear();
        _hub.Metrics.Dropped();
        var wake = _wake;
        _wake = null;
        wake?.TrySetResult();
    }

    private void CloseSlow() => _ = _connection.CloseAsync(CloseStatus.TryAgainLater, "too slow: reconnect and recover with since");

    private bool _writing; // a send is under way (direct, or the writer loop's batch)

    private void SendDirect(PreparedMessage message)
    {
        ValueTask send;
        try
        {
            send = _connection.SendAsync(message);
        }
        catch (WebSocketClosedException)
        {
            FinishDirect();
            return;
        }
        if (!send.IsCompleted)
        {
            _ = CompleteDirectAsync(send);
            return;
        }
        try
        {
            send.GetAwaiter().GetResult();
        }
        catch (WebSocketClosedException)
        {
        }
        FinishDirect();
    }

    private async Task CompleteDirectAsync(ValueTask send)
    {
        try
        {
            await send.ConfigureAwait(false);
        }
        catch (WebSocketClosedException)
        {
        }
        FinishDirect();
    }

    // After a direct send: what was queued meanwhile goes to the writer loop.
    private void FinishDirect()
    {
        TaskCompletionSource? wake = null;
        lock (_outboxLock)
        {
            _writing = false;
            if (_queue.Count > 0 || _overflowed)
            {
                wake = _wake;
                _wake = null;
            }
        }
        wake?.TrySetResult();
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<PreparedMessage>();
        while (true)
        {
            Task? wait = null;
            lock (_outboxLock)
            {
                if (_queue.Count == 0 || _writing)
                {
                    if (_overflowed && _queue.Count == 0 && !_writing)
                        return;
                    _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _wake.Task;
                }
                else
                {
                    _writing = true;
                    while (_queue.TryDequeue(out var next))
                        batch.Add(next);
                    _queuedBytes = 0;
                }
            }
            if (wait is not null)
            {
                await wait.ConfigureAwait(false);
                continue;
            }
            try
            {
                foreach (var message in batch)
                {
                    // Dropped meanwhile: the rest of the batch is not sent, so the 1013 goes next.
                    if (Volatile.Read(ref _overflowed))
                        break;
                    await _connection.SendAsync(message).ConfigureAwait(false);
                }
            }
            catch (WebSocketClosedException)
            {
                return;
            }
            finally
            {
                batch.Clear();
                lock (_outboxLock)
                    _writing = false;
            }
        }
    }
}

using System.Runtime.CompilerServices;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;
using Duplex.Transport;

namespace Duplex;

/// <summary>
/// One WebSocket connection over a duplex byte stream, for either role: the role only decides
/// who masks. Receiving is pulled by <see cref="ReceiveAsync"/>, which also answers pings and
/// the peer's close. Sends from several tasks at once are safe; frames never interleave.
/// The peer's protocol violations never throw: the connection closes with the right status and
/// the next receive reports it.
/// </summary>
/// <remarks>
/// The rules live in a <see cref="WebSocketProtocol"/> (no I/O); this class moves its bytes
/// through a <see cref="Transport.Transport"/> and runs its two halves under two locks: the
/// receive lock (one reader of the peer's bytes at a time: the application, keep-alive's read
/// ahead, or a close) and the send lock (one writer of frames and of the output at a time).
/// </remarks>
public sealed partial class WebSocketConnection : IAsyncDisposable
{
    private readonly Transport.Transport _transport;
    private readonly WebSocketProtocol _protocol;
    private readonly AsyncLock _receiveLock = new();
    private TaskCompletionSource? _completed;     // made on first use: most connections are never awaited
    private ConnectionTimers.Entry? _timers;
    private int _disposed;
    // Under the receive lock. False only right after a read that did not fill its buffer: the
    // socket was drained then, so the receive waits for the next edge instead of reading again.
    // Every read must set it: the keep-alive's read-ahead once drained a full buffer without doing
    // so, a stale false then made the receive wait for an edge that never came while bytes sat in
    // the socket (a client that paused receiving stalled for good).
    private bool _mayHaveMore = true;
    private Task? _readAheadWait;                  // a wait for bytes that a read-ahead started and nobody holds

    /// <summary>
    /// Wraps a stream on which the opening handshake has already happened (for example one that
    /// another HTTP server upgraded). <see cref="WebSocketClient"/> and <see cref="Server.WebSocketServer"/>
    /// call this for you.
    /// </summary>
    /// <param name="received">Bytes already read past the handshake, which belong to the first frames.</param>
    /// <param name="compression">
    /// The permessage-deflate parameters that handshake agreed (see <see cref="Protocol.Deflate.DeflateNegotiation"/>),
    /// or null; levels come from <see cref="WebSocketOptions.Compression"/>.
    /// </param>
    public static WebSocketConnection Create(Stream stream, Role role, WebSocketOptions? options = null,
        string? subProtocol = null, ReadOnlySpan<byte> received = default, DeflateParameters? compression = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new WebSocketOptions();
        return new WebSocketConnection(new StreamTransport(stream), role, options, subProtocol, received,
            compression, options.Compression ?? new PerMessageDeflateOptions());
    }

    internal WebSocketConnection(Transport.Transport transport, Role role, WebSocketOptions options, string? subProtocol,
        ReadOnlySpan<byte> received, DeflateParameters? deflate, PerMessageDeflateOptions? compression)
    {
        _transport = transport;
        Role = role;
        SubProtocol = subProtocol;
        Options = options;
        var deflateSettings = compression is null ? default : new DeflateSettings(compression.Threshold, compression.Level, compression.MemoryLevel);
        _protocol = new WebSocketProtocol(new ProtocolSettings(role, options.MaxMessageSize,
            options.KeepAliveEnabled ? options.KeepAliveInterval : TimeSpan.Zero, options.KeepAliveTimeout,
            options.CloseTimeout, options.TimeProvider, options.SendTimeout, deflate, deflateSettings));
        if (!received.IsEmpty)
            _protocol.Received(received); // after the extension is on: these may be compressed frames
        _timers = ConnectionTimers.Add(this, options);
        Diagnostics.DuplexMeter.ConnectionOpened(role);
    }

    internal WebSocketOptions Options { get; }

    /// <summary>Client or server: which end of the connection this is.</summary>
    public Role Role { get; }

    /// <summary>The subprotocol agreed in the handshake, or null.</summary>
    public string? SubProtocol { get; }

    /// <summary>The permessage-deflate parameters agreed in the handshake, or null.</summary>
    public DeflateParameters? Compression => _protocol.Compression;

    /// <summary>Where the connection is in its life: open, closing (either way) or closed.</summary>
    public ConnectionState State => _protocol.State switch
    {
        ProtocolState.Open => ConnectionState.Open,
        ProtocolState.CloseReceived => ConnectionState.CloseReceived,
        ProtocolState.Closed => ConnectionState.Closed,
        _ => ConnectionState.CloseSent, // both close frames exchanged: only the end of TCP is left
    };

    private bool IsClosed => _protocol.State == ProtocolState.Closed;

    /// <summary>Once closed: the status the connection ended with.</summary>
    public CloseStatus? CloseStatus => IsClosed ? _protocol.CloseStatus : null;

    /// <summary>Once closed: the reason that came with <see cref="CloseStatus"/>.</summary>
    public string? CloseReason => IsClosed ? _protocol.CloseReason : null;

    /// <summary>Completes when the connection has closed, whichever way.</summary>
    public Task Completion
    {
        get
        {
            if (_completed is null)
            {
                var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (Interlocked.CompareExchange(ref _completed, created, null) is null && IsClosed)
                    created.TrySetResult(); // the connection ended while the source was being made
            }
            return _completed!.Task;
        }
    }

    /// <summary>Called with the payload of every pong received (on the receiving task).</summary>
    public Action<ReadOnlyMemory<byte>>? PongReceived { get; set; }

    /// <summary>Called with the payload of every ping received, before it is answered (on the receiving task).</summary>
    public Action<ReadOnlyMemory<byte>>? PingReceived { get; set; }

    // ---------------------------------------------------------------- receiving

    /// <summary>
    /// Waits for the next message. Its payload is lent: it stays valid and unchanged until your
    /// next call to this method, whatever else happens meanwhile (a close, a dispose, keep-alive,
    /// a send); copy it (<see cref="WebSocketMessage.ToArray"/>, <see cref="WebSocketMessage.GetText"/>)
    /// to keep it longer. When the connection closes (handshake done, failed or lost) it returns a
    /// message of type <see cref="MessageType.Close"/> with the status, and does so again on every
    /// later call. One receive at a time; cancelling it aborts the connection, since a frame may
    /// have been half read.
    /// </summary>
    public ValueTask<WebSocketMessage> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        if (_receiveLock.TryEnter())
            return ReceiveCoreAsync(ReceiveMode.Deliver, releaseLock: true, cancellationToken);
        return ReceiveWhenFreeAsync(cancellationToken);
    }

    // Rare: a read-ahead or a close holds the receive lock.
    private async ValueTask<WebSocketMessage> ReceiveWhenFreeAsync(CancellationToken cancellationToken)
    {
        await _receiveLock.EnterAsync(cancellationToken).ConfigureAwait(false);
        return await ReceiveCoreAsync(ReceiveMode.Deliver, releaseLock: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every message until the connection closes.</summary>
    public async IAsyncEnumerable<WebSocketMessage> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var message = await ReceiveAsync(cancellationToken).ConfigureAwait(false);
            if (message.IsClose)
                yield break;
            yield return message;
        }
    }

    // The whole receive path in one method (one pooled state machine per connection: an idle
    // server holds one per client). Runs under _receiveLock; releases it when asked. Turns the
    // protocol's events into I/O until a data message (Deliver), a held one (ReadAhead) or the end.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<WebSocketMessage> ReceiveCoreAsync(ReceiveMode mode, bool releaseLock, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                switch (_protocol.Receive(mode))
                {
                    case ProtocolEvent.Message:
                        if (mode == ReceiveMode.Deliver)
                            Diagnostics.DuplexMeter.MessageReceived(_protocol.Payload.Length);
                        return new WebSocketMessage((MessageType)_protocol.MessageOpcode, _protocol.Payload);
                    case ProtocolEvent.NeedMoreData:
                        try
                        {
                            if (mode == ReceiveMode.ReadAhead)
                            {
                                if (!await ReadAheadMoreAsync().ConfigureAwait(false))
                                    return default; // nothing there yet: the next tick looks again
                                break;
                            }
                            if (TryReadNow(out var started))
                                break;
                            // Wait inline (a nested async method would cost a continuation per wait).
                            int read;
                            try
                            {
                                if (_protocol.IsIdle)
                                    _protocol.ReleaseIdleBuffer(); // the idle wait holds no receive buffer
                                if (started is not null)
                                    await started.WaitAsync(cancellationToken).ConfigureAwait(false);
                                else
                                    await _transport.WaitReadableAsync(cancellationToken).ConfigureAwait(false);
                                var memory = _protocol.GetReceiveMemory();
                                read = await _transport.ReadAsync(memory, cancellationToken).ConfigureAwait(false);
                                _mayHaveMore = read == memory.Length;
                            }
                            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                            {
                                Abort();
                                throw;
                            }
                            catch (Exception e) when (Transport.Transport.IsFailure(e) || e is OperationCanceledException)
                            {
                                read = 0;
                            }
                            Received(read);
                        }
                        catch (OutOfMemoryException)
                        {
                            // The heap is at its limit (a container's, say): this connection fails
                            // with 1011 and frees what it holds; the others and shutdown go on.
                            _protocol.Fail(new ProtocolError(Protocol.CloseStatus.InternalServerError, "out of memory for this message"));
                            await FinishAsync().ConfigureAwait(false);
                        }
                        break;
                    case ProtocolEvent.Ping:
                        PingReceived?.Invoke(_protocol.Payload);
                        await SendOwedFramesAsync().ConfigureAwait(false);
                        break;
                    case ProtocolEvent.Pong:
                        PongReceived?.Invoke(_protocol.Payload);
                        break;
                    case ProtocolEvent.Close:
                    case ProtocolEvent.Failed:
                        await FinishAsync().ConfigureAwait(false);
                        break;
                    default:
                        _protocol.DisposeReceiver();
                        return new WebSocketMessage(MessageType.Close, default, _protocol.CloseStatus ?? Protocol.CloseStatus.AbnormalClosure, _protocol.CloseReason);
                }
            }
        }
        finally
        {
            if (releaseLock)
                _receiveLock.Exit();
        }
    }

    // Bytes from the transport into the protocol, the common case: what is already there.
    // After a read that did not fill its buffer the socket is drained, so the next read waits
    // for the next edge instead of trying a read that would find nothing. False: wait (for the
    // read-ahead's pending wait, when there is one; only one may be pending).
    private bool TryReadNow(out Task? started)
    {
        started = Interlocked.Exchange(ref _readAheadWait, null);
        if (started is not null || !_mayHaveMore)
            return false;
        var available = _protocol.GetReceiveMemory();
        int read;
        try
        {
            read = _transport.TryRead(available.Span);
        }
        catch (Exception e) when (Transport.Transport.IsFailure(e))
        {
            read = 0;
        }
        if (read < 0)
            return false;
        _mayHaveMore = read == available.Length;
        Received(read);
        return true;
    }

    // Keep-alive's read-ahead never waits while holding the receive lock (the application may
    // come for a held message any moment): it reads what is there, or starts a wait that
    // nobody holds and returns false; the next tick, or the application's next receive, takes
    // that wait over. Only one wait on the transport is ever pending.
    private async ValueTask<bool> ReadAheadMoreAsync()
    {
        int read;
        try
        {
            if (Volatile.Read(ref _readAheadWait) is { } started)
            {
                if (!started.IsCompleted)
                    return false;
                _readAheadWait = null;
            }
            else
            {
                var available = _protocol.GetReceiveMemory();
                read = _transport.TryRead(available.Span);
                if (read >= 0)
                {
                    _mayHaveMore = read == available.Length;
                    Received(read);
                    return true;
                }
                if (_protocol.IsIdle)
                    _protocol.ReleaseIdleBuffer();
                var wait = _transport.WaitReadableAsync(CancellationToken.None);
                if (!wait.IsCompleted)
                {
                    _readAheadWait = ObserveAsync(wait);
                    return false;
                }
                await wait.ConfigureAwait(false);
            }
            var memory = _protocol.GetReceiveMemory();
            read = await _transport.ReadAsync(memory, CancellationToken.None).ConfigureAwait(false);
            _mayHaveMore = read == memory.Length;
        }
        catch (Exception e) when (Transport.Transport.IsFailure(e) || e is OperationCanceledException)
        {
            read = 0;
        }
        Received(read);
        return true;

        static async Task ObserveAsync(ValueTask wait)
        {
            try
            {
                await wait.ConfigureAwait(false);
            }
            catch (Exception e) when (Transport.Transport.IsFailure(e) || e is OperationCanceledException)
            {
                // The next read finds the transport broken and ends the connection.
            }
        }
    }

    private void Received(int read)
    {
        if (read > 0)
        {
            _protocol.Received(read);
            return;
        }
        // Terminate records the end in the protocol (a close frame received before keeps its status).
        Terminate(Protocol.CloseStatus.AbnormalClosure, "connection closed without a close frame");
    }

    // After the peer's close or a failure: send what is owed (the echo, the failure's close),
    // then end TCP as the protocol says and end the connection.
    private async ValueTask FinishAsync()
    {
        await SendOwedFramesAsync().ConfigureAwait(false);
        if (_protocol.ShouldEndTransport)
            await EndTransportAsync().ConfigureAwait(false);
        Terminate(Protocol.CloseStatus.AbnormalClosure, "connection closed");
    }

    // After the close frames: the server ends TCP first (§7.1.1) by sending FIN; both sides then
    // read until the peer's FIN, so that unread bytes never turn the close into a reset. The
    // close timeout (ConnectionTimers) bounds the wait by aborting. A server on a stream it cannot
    // half-close (Kestrel's upgraded stream, an HTTP/2 stream) ends it whole instead: waiting for the
    // client's FIN there would wait for a client that waits for ours, and end in the close timeout.
    private async ValueTask EndTransportAsync()
    {
        if (_protocol.ShutsDownFirst && !_transport.CanShutdownSend)
            return;
        try
        {
            if (_protocol.ShutsDownFirst)
                await _transport.ShutdownSendAsync().ConfigureAwait(false);
            _protocol.ReleaseIdleBuffer();
            byte[] scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(512);
            try
            {
                while (!IsClosed && await _transport.ReadAsync(scratch, CancellationToken.None).ConfigureAwait(false) > 0)
                {
                }
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(scratch);
            }
        }
        catch (Exception e) when (Transport.Transport.IsFailure(e) || e is OperationCanceledException or InvalidOperationException)
        {
        }
    }

    // ---------------------------------------------------------------- closing

    /// <summary>
    /// Starts the closing handshake (§7): sends a close frame, then waits for the peer's close
    /// (at most <see cref="WebSocketOptions.CloseTimeout"/>) and ends the connection. Messages
    /// that arrive meanwhile are dropped unless another task is receiving them. A payload you
    /// hold from <see cref="ReceiveAsync"/> stays intact.
    /// </summary>
    public async Task CloseAsync(CloseStatus status = Protocol.CloseStatus.NormalClosure, string? reason = null,
        CancellationToken cancellationToken = default)
    {
        // Checked before anything is sent, so that a bad argument leaves the connection open.
        _ = CloseFrame.Write(new byte[125], status, reason);
        if (IsClosed)
            return;
        await SendCloseAsync(status, reason).ConfigureAwait(false);
        if (IsClosed)
            return;
        using (cancellationToken.UnsafeRegister(static s => ((WebSocketConnection)s!).Abort(), this))
        {
            if (_receiveLock.TryEnter())
            {
                // Nobody is receiving: read up to the peer's close ourselves (out of the way of a lent payload).
                try
                {
                    await ReceiveCoreAsync(ReceiveMode.Discard, releaseLock: false, CancellationToken.None).ConfigureAwait(false);
                }
                finally
                {
                    _receiveLock.Exit();
                }
            }
            else
            {
                // A receive is running and will see the close; the close timeout bounds the wait.
                await Completion.ConfigureAwait(false);
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>Drops the connection at once, with no close handshake.</summary>
    public void Abort() => Terminate(Protocol.CloseStatus.AbnormalClosure, "connection aborted");

    // Ends the connection: records how (the first record wins), closes the transport, wakes waiters.
    private void Terminate(CloseStatus status, string? reason)
    {
        if (!_protocol.End(status, reason))
            return;
        Diagnostics.DuplexMeter.ConnectionClosed(Role, _protocol.CloseStatus ?? status);
        ConnectionTimers.Remove(_timers);
        _timers = null;
        try
        {
            _transport.Dispose();
        }
        catch (Exception e) when (Transport.Transport.IsFailure(e))
        {
        }
        Volatile.Read(ref _completed)?.TrySetResult();
    }

    // From ConnectionTimers, on a timer thread: keep-alive and the close timeout.
    internal void OnTimer()
    {
        if (IsClosed)
            return;
        // While the application is not receiving, read on its behalf, so that pings are answered
        // and pongs and the peer's close are seen; two messages are held for it at most.
        if (_protocol.Settings.KeepAliveEnabled && !_protocol.InboxFull)
            StartReadAhead();
        switch (_protocol.OnTimer(peerIsRead: !_protocol.InboxFull))
        {
            case TimerAction.SendPing:
                _ = PingQuietlyAsync();
                break;
            case TimerAction.KeepAliveTimedOut:
                Terminate(Protocol.CloseStatus.AbnormalClosure, "keep-alive timeout: the peer stopped answering");
                break;
            case TimerAction.CloseTimedOut:
                Terminate(Protocol.CloseStatus.AbnormalClosure, "close timeout: the closing handshake did not finish");
                break;
            case TimerAction.SendTimedOut:
                Terminate(Protocol.CloseStatus.PolicyViolation, "send timeout: the peer stopped reading");
                break;
        }
    }

    private async Task PingQuietlyAsync()
    {
        try
        {
            await PingAsync().ConfigureAwait(false);
        }
        catch (WebSocketClosedException)
        {
        }
    }

    private void StartReadAhead()
    {
        if (!_receiveLock.TryEnter())
            return; // a receive (or a close) is reading already
        _ = ReadAheadAsync();
    }

    private async Task ReadAheadAsync()
    {
        try
        {
            await ReceiveCoreAsync(ReceiveMode.ReadAhead, releaseLock: false, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketClosedException || Transport.Transport.IsFailure(e))
        {
        }
        finally
        {
            _receiveLock.Exit();
        }
    }

    /// <summary>Closes with 1000 if still open (waiting at most the close timeout), then frees the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (!IsClosed)
        {
            try
            {
                await CloseAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketClosedException or OperationCanceledException)
            {
            }
        }
        Terminate(Protocol.CloseStatus.AbnormalClosure, "connection disposed");
        // Each half is freed under its own lock, when nothing can be using it; a payload still
        // lent to the application is left intact (to the GC), never reused.
        await _receiveLock.EnterAsync().ConfigureAwait(false);
        try
        {
            _protocol.DisposeReceiver();
        }
        finally
        {
            _receiveLock.Exit();
        }
        await _sendLock.EnterAsync().ConfigureAwait(false);
        try
        {
            _protocol.DisposeSender();
        }
        finally
        {
            _sendLock.Exit();
        }
    }

    /// <summary>The role and state, for logs.</summary>
    public override string ToString() => $"WebSocketConnection({Role}, {State})";
}

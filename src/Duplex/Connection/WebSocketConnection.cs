using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using Duplex.Protocol;
using Duplex.Transport;

namespace Duplex;

/// <summary>
/// One WebSocket connection over a duplex byte stream, for either role: the role only decides
/// who masks. Receiving is pulled by <see cref="ReceiveAsync"/>, which also answers pings and
/// the peer's close. Sends from several tasks at once are safe; frames never interleave.
/// The peer's protocol violations never throw: the connection closes with the right status and
/// the next receive reports it.
/// </summary>
public sealed partial class WebSocketConnection : IAsyncDisposable, IThreadPoolWorkItem
{
    private readonly Stream _stream;
    private readonly Socket? _socket;
    private readonly WebSocketOptions _options;
    private readonly MessageReader _reader;
    private readonly MaskKeySource? _masks;
    private readonly AsyncLock _receiveLock = new();
    private readonly AsyncLock _frameLock = new();            // one frame on the wire at a time
    // Made on first use: most connections never stream a message or wait for their end, and an
    // idle server holds one connection object per client.
    private AsyncLock? _messageLock;           // one streamed data message at a time
    private TaskCompletionSource? _completed;
    private int _terminating;
    private object? _keepAlive;

    private volatile bool _closeSent;
    private volatile bool _closeReceived;
    private volatile bool _terminated;
    // Messages read ahead by keep-alive that the application has not taken yet, oldest first:
    // at most one copied out of the reader's buffer and one still in it.
    private byte[]? _aheadCopy;
    private int _aheadCopyLength;
    private MessageType _aheadCopyType;
    private bool _aheadCopyCompressed;
    private bool _aheadInReader;
    private byte[]? _handedCopy;           // given to the application; back to the pool at the next receive
    private bool _payloadLent;             // the application holds a payload that lives in the reader's buffer
    private int _disposed;
    private CloseStatus _closeStatus;
    private string? _closeReason;
    private long _lastReceivedTicks = Environment.TickCount64;
    private long _pingSentTicks;

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
        string? subProtocol = null, ReadOnlySpan<byte> received = default, Protocol.Deflate.DeflateParameters? compression = null)
    {
        options ??= new WebSocketOptions();
        var connection = new WebSocketConnection(stream, null, role, options, subProtocol, default);
        if (compression is not null)
            connection.UseCompression(compression, options.Compression ?? new PerMessageDeflateOptions());
        if (!received.IsEmpty)
            connection._reader.Write(received);
        return connection;
    }

    // The socket under a TLS stream, so that the close can end TCP with a FIN.
    internal static WebSocketConnection Create(Stream stream, Socket socket, Role role, WebSocketOptions options,
        string? subProtocol, ReadOnlySpan<byte> received, Protocol.Deflate.DeflateParameters? deflate = null,
        PerMessageDeflateOptions? compression = null)
    {
        var connection = new WebSocketConnection(stream, socket, role, options, subProtocol, default);
        if (deflate is not null)
            connection.UseCompression(deflate, compression!);
        if (!received.IsEmpty)
            connection._reader.Write(received); // after the extension is on: these may be compressed frames
        return connection;
    }

    private WebSocketConnection(Stream stream, Socket? socket, Role role, WebSocketOptions options, string? subProtocol, ReadOnlySpan<byte> received)
    {
        _stream = stream;
        _socket = socket;
        _options = options;
        Role = role;
        SubProtocol = subProtocol;
        _reader = new MessageReader(role, options.MaxMessageSize);
        if (!received.IsEmpty)
            _reader.Write(received);
        if (role == Role.Client)
            _masks = new MaskKeySource();
        if (options.KeepAliveEnabled)
            _keepAlive = KeepAliveScheduler.Add(this, options);
    }

    public Role Role { get; }

    /// <summary>The subprotocol agreed in the handshake, or null.</summary>
    public string? SubProtocol { get; }

    public ConnectionState State => _terminated ? ConnectionState.Closed : _closeSent ? ConnectionState.CloseSent : ConnectionState.Open;

    /// <summary>Once closed: the status the connection ended with.</summary>
    public CloseStatus? CloseStatus => _terminated ? _closeStatus : null;

    /// <summary>Once closed: the reason that came with <see cref="CloseStatus"/>.</summary>
    public string? CloseReason => _terminated ? _closeReason : null;

    /// <summary>Completes when the connection has closed, whichever way.</summary>
    public Task Completion
    {
        get
        {
            if (_completed is null)
            {
                var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (Interlocked.CompareExchange(ref _completed, created, null) is null && _terminated)
                    created.TrySetResult(); // the connection ended while the source was being made
            }
            return _completed!.Task;
        }
    }

    private AsyncLock MessageLock
    {
        get
        {
            if (_messageLock is null)
                Interlocked.CompareExchange(ref _messageLock, new AsyncLock(), null);
            return _messageLock!;
        }
    }

    /// <summary>Called with the payload of every pong received (on the receiving task).</summary>
    public Action<ReadOnlyMemory<byte>>? PongReceived { get; set; }

    // ---------------------------------------------------------------- receiving

    /// <summary>
    /// Waits for the next message. When the connection closes (handshake done, failed or lost)
    /// it returns a message of type <see cref="MessageType.Close"/> with the status, and does so
    /// again on every later call. One receive at a time; cancelling it aborts the connection,
    /// since a frame may have been half read.
    /// </summary>
    public ValueTask<WebSocketMessage> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        // A message that keep-alive read ahead and copied out is handed over at once, even while
        // the read-ahead still waits for more.
        if (_aheadCopy is not null && !_aheadCopyCompressed && TakeAheadCopy() is { } message)
            return ValueTask.FromResult(message);
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

    private WebSocketMessage? TakeAheadCopy()
    {
        var copy = Interlocked.Exchange(ref _aheadCopy, null);
        if (copy is null)
            return null;
        var message = new WebSocketMessage(_aheadCopyType, copy.AsMemory(0, _aheadCopyLength));
        if (Interlocked.Exchange(ref _handedCopy, copy) is { } previous)
            ArrayPool<byte>.Shared.Return(previous);
        return message;
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

    private enum ReceiveMode
    {
        Deliver,    // for the application: kept messages first, then the next one read
        Discard,    // while closing: read up to the end, dropping messages
        ReadAhead,  // for keep-alive: read the next message only, leaving kept ones alone
    }

    // The whole receive path in one method (one pooled state machine per connection, not four:
    // an idle server holds one per client). Runs under _receiveLock; releases it when asked.
    // Reads frames until a data message or the end, answering pings and the peer's close.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<WebSocketMessage> ReceiveCoreAsync(ReceiveMode mode, bool releaseLock, CancellationToken cancellationToken)
    {
        try
        {
            bool discard = mode == ReceiveMode.Discard;
            if (mode != ReceiveMode.ReadAhead)
            {
                _payloadLent = false;
                if (Interlocked.Exchange(ref _handedCopy, null) is { } handed)
                    ArrayPool<byte>.Shared.Return(handed);
                bool compressedCopy = _aheadCopyCompressed;
                if (TakeAheadCopy() is { } copied && !discard)
                {
                    if (Deliver(copied.Type, compressedCopy, copied.Payload, out var copyError) is { } ready)
                        return ready;
                    await FailAsync(copyError).ConfigureAwait(false);
                }
                else if (_aheadInReader)
                {
                    _aheadInReader = false;
                    if (!discard)
                    {
                        bool compressed = (_reader.MessageRsv & FrameHeader.Rsv1) != 0;
                        if (Deliver((MessageType)_reader.MessageType, compressed, _reader.Payload, out var keptError) is { } kept)
                        {
                            _payloadLent = !compressed;
                            return kept;
                        }
                        await FailAsync(keptError).ConfigureAwait(false);
                    }
                }
            }
            while (!_terminated)
            {
                switch (_reader.Read())
                {
                    case ReadEvent.NeedMoreData:
                        // About to wait for the peer: first send what this turn's sends gathered.
                        if (_outputLength > 0)
                            await TryFlushAsync().ConfigureAwait(false);
                        int read;
                        try
                        {
                            // While no partial frame is held, the wait holds no buffer either (a
                            // zero-byte read), so an idle connection costs no receive buffer.
                            if (_stream is EventLoopStream loop)
                            {
                                while ((read = loop.TryReadNow(_reader.GetMemory().Span)) < 0)
                                {
                                    _reader.ReleaseBufferIfIdle();
                                    await loop.WaitReadableAsync(cancellationToken).ConfigureAwait(false);
                                }
                            }
                            else
                            {
                                if (_reader.IsIdle)
                                {
                                    _reader.ReleaseBufferIfIdle();
                                    await _stream.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
                                }
                                read = await _stream.ReadAsync(_reader.GetMemory(), cancellationToken).ConfigureAwait(false);
                            }
                        }
                        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                        {
                            Abort();
                            throw;
                        }
                        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                        {
                            read = 0;
                        }
                        if (read == 0)
                        {
                            Terminate(Protocol.CloseStatus.AbnormalClosure, "connection closed without a close frame");
                            break;
                        }
                        _reader.Advance(read);
                        _lastReceivedTicks = Environment.TickCount64;
                        break;
                    case ReadEvent.Message:
                        if (discard)
                            break;
                        if (mode == ReceiveMode.ReadAhead)
                            return new WebSocketMessage((MessageType)_reader.MessageType, _reader.Payload); // kept, inflated when handed over
                        bool isCompressed = (_reader.MessageRsv & FrameHeader.Rsv1) != 0;
                        if (Deliver((MessageType)_reader.MessageType, isCompressed, _reader.Payload, out var error) is { } message)
                        {
                            _payloadLent = !isCompressed;
                            return message;
                        }
                        await FailAsync(error).ConfigureAwait(false);
                        break;
                    case ReadEvent.Ping:
                        await TrySendPongAsync().ConfigureAwait(false);
                        break;
                    case ReadEvent.Pong:
                        PongReceived?.Invoke(_reader.Payload);
                        break;
                    case ReadEvent.Close:
                        await OnCloseFrameAsync().ConfigureAwait(false);
                        break;
                    case ReadEvent.Error:
                        await FailAsync(_reader.Error).ConfigureAwait(false);
                        break;
                }
            }
            _reader.Dispose();
            return new WebSocketMessage(MessageType.Close, default, _closeStatus, _closeReason);
        }
        finally
        {
            if (releaseLock)
                _receiveLock.Exit();
        }
    }

    // A ping is answered unless our close has gone out; a send that fails here ends the
    // connection, which the receive loop then reports instead of throwing.
    private async ValueTask TrySendPongAsync()
    {
        if (_closeSent)
            return;
        try
        {
            await SendControlAsync(Opcode.Pong, _reader.Payload, CancellationToken.None).ConfigureAwait(false);
        }
        catch (WebSocketClosedException)
        {
        }
    }

    // The peer's close frame: answer it (§5.5.1) unless we started the close, then end TCP.
    private async ValueTask OnCloseFrameAsync()
    {
        _closeReceived = true;
        var status = _reader.CloseStatus;
        string reason = _reader.CloseReason;
        if (!_closeSent)
        {
            // Echo the status; a close without a status is answered with one without a status.
            await TrySendCloseAsync(status, null).ConfigureAwait(false);
        }
        await EndTransportAsync().ConfigureAwait(false);
        Terminate(status, reason);
    }

    // §7.1.7 "Fail the WebSocket Connection": one close frame with the reason, then drop TCP.
    private async ValueTask FailAsync(ProtocolError error)
    {
        if (!_closeSent)
            await TrySendCloseAsync(error.Status, CloseFrame.Truncate(error.Reason)).ConfigureAwait(false);
        await EndTransportAsync().ConfigureAwait(false);
        Terminate(error.Status, error.Reason);
    }

    // After the close frames: the server ends TCP first (§7.1.1) by sending FIN; both sides then
    // read until the peer's FIN (bounded), so that unread bytes never turn the close into a reset.
    private async ValueTask EndTransportAsync()
    {
        using var timeout = new CancellationTokenSource(_options.CloseTimeout);
        try
        {
            if (Role == Role.Server)
                await ShutdownSendAsync().ConfigureAwait(false);
            var scratch = ArrayPool<byte>.Shared.Rent(512);
            try
            {
                while (await _stream.ReadAsync(scratch, timeout.Token).ConfigureAwait(false) > 0)
                {
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    private async ValueTask ShutdownSendAsync()
    {
        if (_stream is System.Net.Security.SslStream tls)
            await tls.ShutdownAsync().ConfigureAwait(false);
        var socket = _socket ?? (_stream as NetworkStream)?.Socket;
        socket?.Shutdown(SocketShutdown.Send);
    }

    // ---------------------------------------------------------------- closing

    /// <summary>
    /// Starts the closing handshake (§7): sends a close frame, then waits for the peer's close
    /// (at most <see cref="WebSocketOptions.CloseTimeout"/>) and ends the connection. Messages
    /// that arrive meanwhile are dropped unless another task is receiving them.
    /// </summary>
    public async Task CloseAsync(CloseStatus status = Protocol.CloseStatus.NormalClosure, string? reason = null,
        CancellationToken cancellationToken = default)
    {
        // Checked before anything is sent, so that a bad argument leaves the connection open.
        _ = CloseFrame.Write(new byte[125], status, reason);
        if (_terminated)
            return;
        if (!_closeSent && !_closeReceived)
            await TrySendCloseAsync(status, reason).ConfigureAwait(false);
        if (_terminated)
            return;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.CloseTimeout);
        if (_receiveLock.TryEnter())
        {
            // Nobody is receiving: read up to the peer's close ourselves.
            try
            {
                await ReceiveCoreAsync(ReceiveMode.Discard, releaseLock: false, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Abort();
            }
            finally
            {
                _receiveLock.Exit();
            }
        }
        else
        {
            // A receive is running and will see the close; wait for it.
            try
            {
                await Completion.WaitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Abort();
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
    }

    // Sends our close frame once, with anything gathered before it; bounded by the close
    // timeout, since the peer may not be reading.
    private async ValueTask TrySendCloseAsync(CloseStatus status, string? reason)
    {
        byte[] payload = ArrayPool<byte>.Shared.Rent(125);
        using var timeout = new CancellationTokenSource(_options.CloseTimeout);
        bool locked = false;
        try
        {
            int length = CloseFrame.Write(payload, status, reason);
            await _frameLock.EnterAsync(timeout.Token).ConfigureAwait(false);
            locked = true;
            if (_closeSent || _terminated)
                return;
            _closeSent = true;
            await AppendFrameAsync(Opcode.Close, true, payload.AsMemory(0, length), timeout.Token).ConfigureAwait(false);
            await FlushLockedAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            Abort();
        }
        finally
        {
            if (locked)
                _frameLock.Exit();
            ArrayPool<byte>.Shared.Return(payload);
        }
    }

    /// <summary>Drops the connection at once, with no close handshake.</summary>
    public void Abort() => Terminate(Protocol.CloseStatus.AbnormalClosure, "connection aborted");

    // Ends the connection: records how (the first record wins), closes the stream, wakes waiters.
    private void Terminate(CloseStatus status, string? reason)
    {
        if (Interlocked.Exchange(ref _terminating, 1) != 0)
            return;
        _closeStatus = status;
        _closeReason = reason;
        _terminated = true;
        KeepAliveScheduler.Remove(this, _keepAlive);
        try
        {
            _stream.Dispose();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
        }
        Volatile.Read(ref _completed)?.TrySetResult();
    }

    /// <summary>Closes with 1000 if still open (waiting at most the close timeout), then frees the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (!_terminated)
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
        // The reader's buffer goes back to the pool only when no receive can be writing into it.
        await _receiveLock.EnterAsync().ConfigureAwait(false);
        try
        {
            _reader.Dispose();
            DisposeInflater();
            foreach (var copy in new[] { Interlocked.Exchange(ref _aheadCopy, null), Interlocked.Exchange(ref _handedCopy, null) })
            {
                if (copy is not null)
                    ArrayPool<byte>.Shared.Return(copy);
            }
        }
        finally
        {
            _receiveLock.Exit();
        }
        // The compressor is the send side's: free it only when no send can be using it.
        await _frameLock.EnterAsync().ConfigureAwait(false);
        try
        {
            DisposeDeflater();
            ReturnOutput();
        }
        finally
        {
            _frameLock.Exit();
        }
    }

    public override string ToString() => $"WebSocketConnection({Role}, {State})";
}

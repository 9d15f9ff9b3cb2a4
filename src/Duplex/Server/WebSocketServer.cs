using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;
using Duplex.Transport;
using Microsoft.Extensions.Logging;

namespace Duplex.Server;

/// <summary>Handles one accepted WebSocket connection; the connection closes when it returns.</summary>
public delegate Task WebSocketHandler(WebSocketConnection connection, WebSocketRequest request, CancellationToken stopping);

/// <summary>
/// A WebSocket server: an accept loop, optional TLS, routes by path, origin checks, limits on
/// connections and handshakes, and a graceful shutdown that closes every client with 1001.
/// </summary>
public sealed partial class WebSocketServer : IAsyncDisposable
{
    private readonly WebSocketServerOptions _options;
    private readonly Dictionary<string, Route> _routes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<WebSocketConnection, byte> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Socket? _listener;
    private Task? _acceptLoop;
    private IDisposable? _acceptor;
    private int _open;           // accepted sockets not yet finished
    private int _handshaking;
    private int _refusing;       // connections past a limit, read only to serve plain HTTP routes
    private readonly AddressCounter _pendingPerAddress = new();
    private int _stopped;

    private sealed record Route(WebSocketHandler? Handler, WebSocketRouteOptions? Options, Func<HttpRequestHead, ValueTask<HttpReply>>? Http);

    /// <summary>A server with these settings (defaults when null); map routes, then call StartAsync.</summary>
    public WebSocketServer(WebSocketServerOptions? options = null)
    {
        _options = options ?? new WebSocketServerOptions();
    }

    /// <summary>The settings the server was made with.</summary>
    public WebSocketServerOptions Options => _options;

    /// <summary>Where the server listens (with the real port when port 0 was asked for).</summary>
    public IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint as IPEndPoint;

    /// <summary>Connections now open (upgraded).</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Serves WebSocket connections on a path (exact match, query ignored).</summary>
    public WebSocketServer Map(string path, WebSocketHandler handler, WebSocketRouteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _routes[CheckPath(path)] = new Route(handler, options, null);
        return this;
    }

    /// <summary>Answers plain HTTP GET requests on a path (a status page, health check, …).</summary>
    public WebSocketServer MapHttp(string path, Func<HttpRequestHead, ValueTask<HttpReply>> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _routes[CheckPath(path)] = new Route(null, null, handler);
        return this;
    }

    private string CheckPath(string path)
    {
        if (_listener is not null)
            throw new InvalidOperationException("Map routes before the server starts.");
        if (string.IsNullOrEmpty(path) || path[0] != '/')
            throw new ArgumentException("A route path starts with '/'.", nameof(path));
        return path;
    }

    /// <summary>Binds and starts accepting. Port 0 picks a free port (see <see cref="LocalEndPoint"/>).</summary>
    /// <param name="endPoint">The address and port to listen on.</param>
    /// <param name="cancellationToken">Checked before binding (binding itself does not wait).</param>
    public Task StartAsync(IPEndPoint endPoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        cancellationToken.ThrowIfCancellationRequested();
        if (_listener is not null)
            throw new InvalidOperationException("The server is already started.");
        var listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
                listener.DualMode = true;
            listener.Bind(endPoint);
            listener.Listen(1024);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        PrepareTls();
        if (_options.UseEventLoop && EventLoop.IsSupported)
        {
            _acceptor = EventLoop.Listen(listener, socket =>
            {
                Interlocked.Increment(ref _open);
                _ = ServeAsync(socket); // runs on the loop thread up to its first wait
            });
            _acceptLoop = Task.CompletedTask;
        }
        else
        {
            _acceptLoop = AcceptLoopAsync(listener);
        }
        Log(LogLevel.Information, $"listening on {(_options.Certificate is null ? "ws" : "wss")}://{listener.LocalEndPoint}");
        return Task.CompletedTask;
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }
            catch (SocketException e)
            {
                // Transient (a client reset before accept completed, out of descriptors): keep serving.
                Log(LogLevel.Warning, $"accept failed: {e.SocketErrorCode}");
                await Task.Delay(10).ConfigureAwait(false);
                continue;
            }
            Interlocked.Increment(ref _open);
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    // The handshake phase of a connection. An upgraded connection goes on in RunConnectionAsync,
    // so that nothing of the handshake stays alive while the connection is open.
    private async Task ServeAsync(Socket socket)
    {
        Stream? stream = null;
        bool handedOver = false;
        var remote = socket.RemoteEndPoint;
        try
        {
            socket.NoDelay = true;
            stream = _options.UseEventLoop && EventLoop.IsSupported
                ? EventLoop.Attach(socket)
                : new NetworkStream(socket, ownsSocket: true);
            // Past a limit, only plain HTTP routes are still served (health checks and metrics must
            // answer when the server is full), with a short time for the request; upgrades get 503.
            // The per-address cap keeps one client's silent sockets from locking everyone else out.
            bool overConnections = Volatile.Read(ref _open) > _options.MaxConnections;
            bool counted = !overConnections; // counted among the pending handshakes
            int handshaking = counted ? Interlocked.Increment(ref _handshaking) : 0;
            bool overHandshakes = handshaking > _options.MaxPendingHandshakes;
            // The per-address cap holds only while the server is contended (over half its pending
            // slots taken): one address alone (a proxy, a NAT, a burst of reconnects) may use the
            // room nobody else needs, and is held to its share once others need it.
            int addressLimit = handshaking > _options.MaxPendingHandshakes / 2 ? _options.MaxPendingHandshakesPerAddress : int.MaxValue;
            bool addressCounted = counted && !overHandshakes && _pendingPerAddress.TryEnter(remote, addressLimit);
            string? refusal = overConnections ? "too many connections"
                : overHandshakes ? "too many pending handshakes"
                : !addressCounted ? "too many pending handshakes from your address"
                : null;
            UpgradeResult? upgrade;
            try
            {
                if (refusal is not null && Interlocked.Increment(ref _refusing) > _options.MaxPendingHandshakes)
                {
                    await RespondAsync(stream, 503, refusal).ConfigureAwait(false); // no time even for that: answer at once
                    return;
                }
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                timeout.CancelAfter(refusal is null ? _options.HandshakeTimeout : TimeSpan.FromSeconds(2));
                (stream, upgrade) = await HandshakeAsync(stream, socket, remote, refusal, timeout.Token).ConfigureAwait(false);
            }
            finally
            {
                if (counted)
                    Interlocked.Decrement(ref _handshaking);
                if (addressCounted)
                    _pendingPerAddress.Exit(remote);
                if (refusal is not null)
                    Interlocked.Decrement(ref _refusing);
            }
            if (upgrade is null)
                return;
            stream = null; // the connection owns it now
            handedOver = true;
            _ = RunConnectionAsync(upgrade.Connection, upgrade.Handler, upgrade.Context);
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            // Too slow with its TLS or its request (HandshakeTimeout): dropped.
            Diagnostics.DuplexMeter.HandshakeFailed("timeout");
            if (Logs(LogLevel.Debug))
                Log(LogLevel.Debug, $"handshake from {remote} timed out");
        }
        catch (Exception e) when (Transport.Transport.IsFailure(e) || e is OperationCanceledException)
        {
            // The client went away (or the server is stopping): nothing to answer.
        }
        catch (Exception e)
        {
            // A bug in an application callback (Authorize, SelectSubProtocol, an HTTP route): log it, drop the client.
            Log(LogLevel.Error, $"connection from {remote} failed: {e.GetType().Name}: {e.Message}", e);
        }
        finally
        {
            if (stream is not null)
            {
                await LingerAsync(stream, socket).ConfigureAwait(false);
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            if (!handedOver)
                ConnectionEnded();
        }
    }

    // An open connection, from the handler's start to the end. Its state machine is what an idle
    // connection costs the server, so it keeps little: the request goes to the handler only.
    private async Task RunConnectionAsync(WebSocketConnection connection, WebSocketHandler? handler, WebSocketRequest? request)
    {
        _connections.TryAdd(connection, 0);
        string? label = null;
        long started = Stopwatch.GetTimestamp();
        try
        {
            if (_stopping.IsCancellationRequested)
            {
                await connection.CloseAsync(CloseStatus.GoingAway, "server shutting down").ConfigureAwait(false);
                return;
            }
            if (Logs(LogLevel.Information))
            {
                label = $"{request!.RemoteEndPoint} {request.Path}";
                Log(LogLevel.Information, $"open {label}{(request.SubProtocol is null ? "" : $" ({request.SubProtocol})")}");
            }
            var running = StartHandler(handler!, connection, request!);
            request = null;
            handler = null;
            await running.ConfigureAwait(false);
            if (connection.State == ConnectionState.Open)
                await connection.CloseAsync(CloseStatus.NormalClosure).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not (OutOfMemoryException or WebSocketClosedException))
        {
            // The handler threw: the client learns of it as 1011, the log says what.
            if (connection.State != ConnectionState.Closed)
            {
                Log(LogLevel.Error, $"handler failed: {e.GetType().Name}: {e.Message}", e);
                await CloseQuietlyAsync(connection, CloseStatus.InternalServerError, "internal error").ConfigureAwait(false);
            }
        }
        catch (WebSocketClosedException)
        {
        }
        finally
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            _connections.TryRemove(connection, out _);
            if (label is not null)
                Log(LogLevel.Information, $"close {label} {(int?)connection.CloseStatus}{(string.IsNullOrEmpty(connection.CloseReason) ? "" : " " + connection.CloseReason)} after {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s");
            ConnectionEnded();
        }
    }

    private void ConnectionEnded()
    {
        if (Interlocked.Decrement(ref _open) == 0 && _stopping.IsCancellationRequested)
            _drained.TrySetResult();
    }

    private Task StartHandler(WebSocketHandler handler, WebSocketConnection connection, WebSocketRequest request)
    {
        try
        {
            return handler(connection, request, _stopping.Token);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Task.FromException(e);
        }
    }

    /// <summary>
    /// Stops gracefully: no new connections, every open one gets close 1001, and those that have
    /// not finished within <see cref="WebSocketServerOptions.ShutdownTimeout"/> are aborted.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            await _drained.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        _acceptor?.Dispose();
        _listener?.Dispose();
        if (_acceptLoop is not null)
            await _acceptLoop.ConfigureAwait(false);
        Log(LogLevel.Information, $"shutting down: closing {_connections.Count} connection(s)");
        var closing = new List<Task>();
        foreach (var connection in _connections.Keys)
            closing.Add(CloseQuietlyAsync(connection, CloseStatus.GoingAway, "server shutting down"));
        if (Volatile.Read(ref _open) == 0)
            _drained.TrySetResult();
        try
        {
            await _drained.Task.WaitAsync(_options.ShutdownTimeout + _options.CloseTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            foreach (var connection in _connections.Keys)
                connection.Abort();
        }
        await Task.WhenAll(closing).ConfigureAwait(false);
        Log(LogLevel.Information, "stopped");
    }

    private async Task CloseQuietlyAsync(WebSocketConnection connection, CloseStatus status, string reason)
    {
        try
        {
            using var timeout = new CancellationTokenSource(_options.ShutdownTimeout);
            await connection.CloseAsync(status, reason, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketClosedException or OperationCanceledException)
        {
            connection.Abort();
        }
    }

    private bool Logs(LogLevel level) =>
        (_options.Logger?.IsEnabled(level) ?? false) || (_options.Log is not null && level >= LogLevel.Information);

    private void Log(LogLevel level, string message, Exception? exception = null)
    {
        if (_options.Logger is { } logger && logger.IsEnabled(level))
            logger.Log(level, default, message, exception, static (text, _) => text);
        if (level >= LogLevel.Information)
            _options.Log?.Invoke(message);
    }

    /// <summary>Stops the server (as StopAsync does) and frees its listener.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_listener is not null)
            await StopAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}

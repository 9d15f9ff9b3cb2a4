using System.Net;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;
using Duplex.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Duplex.AspNetCore;

/// <summary>A handler of connections accepted by a <c>MapDuplex</c> endpoint.</summary>
public delegate Task DuplexHandler(WebSocketConnection connection, HttpContext context);

// One MapDuplex endpoint: the opening handshake on what Kestrel parsed (HTTP/1.1 Upgrade, or
// HTTP/2 extended CONNECT, RFC 8441), with the same checks, choices and answers as the standalone
// server; then the handler, and a clean end: 1000 when the handler returns with the connection
// open, 1011 when it throws, 1001 when the app stops.
internal sealed class DuplexEndpoint(IServiceProvider services, WebSocketRouteOptions? route, DuplexHandler handler)
{
    /// <summary>Runs after the route's own checks, before the answer: a rejection refuses the request (the hub's identity).</summary>
    public Func<HttpContext, WebSocketRequest, HttpRejection?>? Admit { get; init; }

    private DuplexOptions? _options;
    private ILogger? _logger;
    private IHostApplicationLifetime? _lifetime;

    private DuplexOptions Options => _options ??= services.GetService<IOptions<DuplexOptions>>()?.Value ?? new DuplexOptions();

    private ILogger Logger => _logger ??= services.GetService<ILoggerFactory>()?.CreateLogger("Duplex.AspNetCore") ?? NullLogger.Instance;

    public async Task InvokeAsync(HttpContext context)
    {
        var options = Options;
        var request = context.Request;
        var connect = context.Features.Get<IHttpExtendedConnectFeature>();
        bool overHttp2 = connect is { IsExtendedConnect: true };
        var head = new HttpRequestHead(request.Method, $"{request.PathBase}{request.Path}{request.QueryString}", request.Protocol,
            HttpHeaders.FromFields(Fields(request.Headers, request.Host)));
        UpgradeRequest? upgrade = null;
        HttpRejection? rejection = null;
        if (overHttp2)
        {
            if (!string.Equals(connect!.Protocol, "websocket", StringComparison.OrdinalIgnoreCase))
                rejection = new HttpRejection(400, $"this endpoint speaks websocket, not {connect.Protocol}");
            else
                ServerHandshake.TryValidateExtendedConnect(head, out upgrade, out rejection);
        }
        else if (HttpProtocol.IsHttp2(request.Protocol) || HttpProtocol.IsHttp3(request.Protocol))
        {
            // HTTP/2 and /3 forbid Upgrade headers; WebSocket there is an extended CONNECT.
            rejection = new HttpRejection(400, $"WebSocket over {request.Protocol} uses extended CONNECT (RFC 8441)");
        }
        else
        {
            ServerHandshake.TryValidate(head, out upgrade, out rejection);
        }
        if (rejection is null && !WebSocketServer.IsOriginAllowed(options.AllowedOrigins, upgrade!.Origin, request.Host.Value))
            rejection = new HttpRejection(403, "origin not allowed");
        WebSocketRequest? accepted = null;
        if (rejection is null)
        {
            var remote = context.Connection.RemoteIpAddress is { } address ? new IPEndPoint(address, context.Connection.RemotePort) : null;
            accepted = new WebSocketRequest(upgrade!, remote, request.IsHttps);
            if (route?.Authorize is { } authorize)
                rejection = await authorize(accepted).ConfigureAwait(false);
            rejection ??= Admit?.Invoke(context, accepted);
        }
        if (rejection is not null)
        {
            Diagnostics.DuplexMeter.HandshakeFailed(rejection.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Logger.LogDebug("Refused {Remote} {Path}: {Status} {Message}", context.Connection.RemoteIpAddress, request.Path, rejection.StatusCode, rejection.Message);
            await RejectAsync(context, rejection, overHttp2).ConfigureAwait(false);
            return;
        }
        var connection = await AcceptAsync(context, accepted!, overHttp2 ? connect! : null, options).ConfigureAwait(false);
        if (connection is null)
            return;
        await RunAsync(connection, context, options).ConfigureAwait(false);
    }

    // Header fields as the core's checks read them; over HTTP/2 the authority stands in for Host.
    private static IEnumerable<KeyValuePair<string, string>> Fields(IHeaderDictionary headers, HostString host)
    {
        if (!headers.ContainsKey("Host") && host.HasValue)
            yield return new("Host", host.Value);
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
                yield return new(name, value ?? "");
        }
    }

    private static async Task RejectAsync(HttpContext context, HttpRejection rejection, bool overHttp2)
    {
        var response = context.Response;
        response.StatusCode = rejection.StatusCode;
        foreach (var (name, value) in rejection.Headers)
        {
            // Connection-specific fields are not allowed in HTTP/2 answers.
            if (overHttp2 && (name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase) || name.Equals("Connection", StringComparison.OrdinalIgnoreCase)))
                continue;
            response.Headers.Append(name, value);
        }
        response.ContentType = "text/plain; charset=utf-8";
        await response.WriteAsync(rejection.Message, context.RequestAborted).ConfigureAwait(false);
    }

    private async Task<WebSocketConnection?> AcceptAsync(HttpContext context, WebSocketRequest accepted, IHttpExtendedConnectFeature? connect,
        DuplexOptions options)
    {
        accepted.SubProtocol = WebSocketServer.ChooseSubProtocol(accepted.OfferedSubProtocols, route);
        var compression = route?.NoCompression == true ? null : route?.Compression ?? options.Compression;
        DeflateParameters? deflate = null;
        string? extensions = null;
        if (compression is not null && ZLib.IsAvailable)
            DeflateNegotiation.TryAccept(accepted.Request.Extensions, compression.Limits, out deflate, out extensions);
        var headers = context.Response.Headers;
        if (accepted.SubProtocol is not null)
            headers.SecWebSocketProtocol = accepted.SubProtocol;
        if (!string.IsNullOrEmpty(extensions))
            headers.SecWebSocketExtensions = extensions;
        // A WebSocket outlives any request timeout, and its bytes are not a request body to limit.
        context.Features.Get<IHttpRequestTimeoutFeature>()?.DisableTimeout();
        Stream stream;
        if (connect is not null)
        {
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
                bodySize.MaxRequestBodySize = null;
            if (context.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } dataRate)
                dataRate.MinDataRate = null;
            stream = await connect.AcceptAsync().ConfigureAwait(false);
        }
        else
        {
            if (context.Features.Get<IHttpUpgradeFeature>() is not { IsUpgradableRequest: true } upgrade)
            {
                await RejectAsync(context, new HttpRejection(500, "this server cannot upgrade HTTP/1.1 connections"), false).ConfigureAwait(false);
                return null;
            }
            headers.Connection = "Upgrade";
            headers.Upgrade = "websocket";
            headers.SecWebSocketAccept = Handshake.ComputeAccept(accepted.Request.Key);
            stream = await upgrade.UpgradeAsync().ConfigureAwait(false);
        }
        return new WebSocketConnection(new Transport.StreamTransport(stream), Role.Server, options, accepted.SubProtocol,
            default, deflate, compression);
    }

    private async Task RunAsync(WebSocketConnection connection, HttpContext context, DuplexOptions options)
    {
        _lifetime ??= services.GetService<IHostApplicationLifetime>();
        var stopping = _lifetime?.ApplicationStopping ?? CancellationToken.None;
        Logger.LogDebug("Open {Remote} {Path}", context.Connection.RemoteIpAddress, context.Request.Path);
        try
        {
            using (stopping.UnsafeRegister(static state =>
                   {
                       var (open, timeout) = ((WebSocketConnection, TimeSpan))state!;
                       _ = CloseQuietlyAsync(open, CloseStatus.GoingAway, "server shutting down", timeout);
                   }, (connection, options.ShutdownTimeout)))
            {
                try
                {
                    await handler(connection, context).ConfigureAwait(false);
                    if (connection.State == ConnectionState.Open)
                        await connection.CloseAsync(CloseStatus.NormalClosure).ConfigureAwait(false);
                }
                catch (WebSocketClosedException)
                {
                }
                catch (Exception e) when (e is not OutOfMemoryException && connection.State != ConnectionState.Closed)
                {
                    // The handler threw: the client learns of it as 1011, the log says what.
                    Logger.LogError(e, "Duplex handler for {Path} failed", context.Request.Path);
                    await CloseQuietlyAsync(connection, CloseStatus.InternalServerError, "internal error", options.ShutdownTimeout).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            Logger.LogDebug("Close {Remote} {Path} {Status} {Reason}", context.Connection.RemoteIpAddress, context.Request.Path,
                (int?)connection.CloseStatus, connection.CloseReason);
        }
    }

    private static async Task CloseQuietlyAsync(WebSocketConnection connection, CloseStatus status, string reason, TimeSpan timeout)
    {
        try
        {
            using var limit = new CancellationTokenSource(timeout);
            await connection.CloseAsync(status, reason, limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketClosedException or OperationCanceledException or InvalidOperationException)
        {
            connection.Abort();
        }
    }
}

using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;
using Microsoft.Extensions.Logging;

namespace Duplex.Server;

// The opening handshake on the server: TLS, the request head, routing, the checks (version,
// origin, the application's Authorize), subprotocol and extension choice, and the 101.
public sealed partial class WebSocketServer
{
    // Made once: the certificate's chain is built a single time (offline), not per handshake,
    // and the same options object serves every connection.
    private SslServerAuthenticationOptions? _tlsOptions;

    private void PrepareTls()
    {
        if (_options.Certificate is not { } certificate)
            return;
        _tlsOptions = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
            ClientCertificateRequired = false,
        };
    }

    private sealed record UpgradeResult(WebSocketConnection Connection, WebSocketRequest Context, WebSocketHandler Handler);

    // TLS, then the HTTP head, then one of: an HTTP answer (null result) or an upgraded connection.
    // With a refusal (a limit is reached), plain HTTP routes are still answered; an upgrade gets 503.
    private async Task<(Stream, UpgradeResult?)> HandshakeAsync(Stream stream, Socket socket, EndPoint? remote, string? refusal,
        CancellationToken cancellationToken)
    {
        if (_tlsOptions is { } tlsOptions)
        {
            var tls = new SslStream(stream, leaveInnerStreamOpen: false);
            stream = tls;
            try
            {
                await tls.AuthenticateAsServerAsync(tlsOptions, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AuthenticationException or IOException)
            {
                // Scanners, plain-HTTP clients, untrusting browsers: worth a line, not a stack trace.
                Diagnostics.DuplexMeter.HandshakeFailed("tls");
                if (Logs(LogLevel.Information))
                    Log(LogLevel.Information, $"tls handshake from {remote} failed: {e.Message}");
                throw;
            }
        }
        using var reader = new HttpHeadReader(_options.HeadLimits);
        HttpRequestHead? head;
        while (true)
        {
            int read = await stream.ReadAsync(reader.GetMemory(), cancellationToken).ConfigureAwait(false);
            if (read == 0)
                return (stream, null);
            reader.Advance(read);
            var status = reader.TryReadRequest(out head, out var error);
            if (status == OperationStatus.Done)
                break;
            if (status == OperationStatus.InvalidData)
            {
                Refused(remote, "(unparsed)", error.StatusCode, error.Message);
                await RespondAsync(stream, error.StatusCode, error.Message).ConfigureAwait(false);
                return (stream, null);
            }
        }
        {
            if (!_routes.TryGetValue(head!.Path, out var route))
            {
                Diagnostics.DuplexMeter.HandshakeFailed("404");
                await RespondAsync(stream, 404, $"no endpoint at {head.Path}").ConfigureAwait(false);
                return (stream, null);
            }
            if (route.Http is not null)
            {
                await ServeHttpAsync(stream, head, route.Http).ConfigureAwait(false);
                return (stream, null);
            }
            if (refusal is not null)
            {
                Refused(remote, head.Path, 503, refusal);
                await RespondAsync(stream, 503, refusal).ConfigureAwait(false);
                return (stream, null);
            }
            if (!ServerHandshake.TryValidate(head, out var request, out var rejection))
            {
                Refused(remote, head.Path, rejection!.StatusCode, rejection.Message);
                await RespondAsync(stream, rejection).ConfigureAwait(false);
                return (stream, null);
            }
            if (!IsOriginAllowed(_options.AllowedOrigins, request!.Origin, head.Headers["Host"]))
            {
                Refused(remote, head.Path, 403, $"origin {request.Origin} is not allowed");
                await RespondAsync(stream, 403, "origin not allowed").ConfigureAwait(false);
                return (stream, null);
            }
            var context = new WebSocketRequest(request, remote, _options.Certificate is not null);
            if (route.Options?.Authorize is { } authorize && await authorize(context).ConfigureAwait(false) is { } denied)
            {
                Refused(remote, head.Path, denied.StatusCode, denied.Message);
                await RespondAsync(stream, denied).ConfigureAwait(false);
                return (stream, null);
            }
            context.SubProtocol = ChooseSubProtocol(request.SubProtocols, route.Options);
            var compression = route.Options?.NoCompression == true ? null : route.Options?.Compression ?? _options.Compression;
            DeflateParameters? deflate = null;
            string? extensions = null;
            if (compression is not null && ZLib.IsAvailable)
                DeflateNegotiation.TryAccept(request.Extensions, compression.Limits, out deflate, out extensions);
            byte[] response = ServerHandshake.BuildAcceptResponse(request.Key, context.SubProtocol, extensions);
            await stream.WriteAsync(response, cancellationToken).ConfigureAwait(false);
            var connection = new WebSocketConnection(Transport.Transport.For(stream, socket), Role.Server, _options, context.SubProtocol,
                reader.Leftover, deflate, compression);
            return (stream, new UpgradeResult(connection, context, route.Handler!));
        }
    }

    // One refused upgrade: counted by its status, logged with the reason.
    private void Refused(EndPoint? remote, string path, int status, string reason)
    {
        Diagnostics.DuplexMeter.HandshakeFailed(status switch { 400 => "400", 403 => "403", 404 => "404", 426 => "426", 431 => "431", 503 => "503", _ => status.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        if (Logs(LogLevel.Information))
            Log(LogLevel.Information, $"refused {remote} {path}: {status} {reason}");
    }

    internal static string? ChooseSubProtocol(IReadOnlyList<string> offered, WebSocketRouteOptions? options)
    {
        if (offered.Count == 0 || options is null)
            return null;
        if (options.SelectSubProtocol is { } select)
        {
            string? choice = select(offered);
            if (choice is not null && !offered.Contains(choice, StringComparer.Ordinal))
                throw new InvalidOperationException($"SelectSubProtocol chose '{choice}', which the client did not offer.");
            return choice;
        }
        foreach (var protocol in offered)
        {
            if (options.SubProtocols.Contains(protocol, StringComparer.Ordinal))
                return protocol;
        }
        return null;
    }

    // Secure by default: with no allow-list, a browser's page must come from this very host
    // (its Origin names the Host the request was sent to). No Origin: not a browser, allowed.
    internal static bool IsOriginAllowed(IList<string> allowed, string? origin, string? host)
    {
        if (origin is null)
            return true;
        if (allowed.Count == 0)
            return IsSameOrigin(origin, host);
        foreach (var entry in allowed)
        {
            if (entry == "*" || string.Equals(entry.TrimEnd('/'), origin, StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }

    internal static bool IsSameOrigin(string origin, string? host)
    {
        int scheme = origin.IndexOf("://", StringComparison.Ordinal);
        if (scheme < 0 || string.IsNullOrEmpty(host))
            return false; // "null" (a sandboxed page or a file) and junk are not this host
        var authority = origin.AsSpan(scheme + 3);
        int slash = authority.IndexOf('/');
        if (slash >= 0)
            authority = authority[..slash];
        return authority.Equals(host, StringComparison.OrdinalIgnoreCase);
    }
}

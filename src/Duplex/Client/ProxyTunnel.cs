using System.Buffers;
using System.Net;
using System.Text;
using Duplex.Protocol;

namespace Duplex;

/// <summary>
/// The way through an HTTP proxy: a CONNECT request for the server's host and port (RFC 9110
/// §9.3.6), with Basic credentials when the proxy has them, then a plain byte tunnel that TLS and
/// the WebSocket handshake run over as if connected directly.
/// </summary>
internal static class ProxyTunnel
{
    /// <summary>The proxy for <paramref name="uri"/>, or null to connect directly.</summary>
    public static Uri? Choose(Uri uri, WebSocketClientOptions options)
    {
        if (!options.UseProxy)
            return null;
        var proxy = options.Proxy ?? System.Net.Http.HttpClient.DefaultProxy;
        // Proxies are chosen by the HTTP scheme the WebSocket one stands for (HTTP_PROXY for ws://, HTTPS_PROXY for wss://).
        var asHttp = new UriBuilder(uri) { Scheme = ClientHandshake.IsSecure(uri) ? "https" : "http" }.Uri;
        if (proxy.IsBypassed(asHttp))
            return null;
        var chosen = proxy.GetProxy(asHttp);
        if (chosen is null || chosen == asHttp)
            return null;
        if (chosen.Scheme != "http")
            throw new NotSupportedException($"The proxy {chosen} is not an http:// proxy; Duplex tunnels through http:// proxies only.");
        return chosen;
    }

    public static async Task OpenAsync(Stream stream, Uri uri, Uri proxyUri, IWebProxy? proxy, HttpHeadLimits limits,
        CancellationToken cancellationToken)
    {
        string authority = $"{uri.IdnHost}:{uri.Port}";
        if (uri.HostNameType == UriHostNameType.IPv6)
            authority = $"[{uri.DnsSafeHost}]:{uri.Port}";
        var request = new StringBuilder(256)
            .Append("CONNECT ").Append(authority).Append(" HTTP/1.1\r\n")
            .Append("Host: ").Append(authority).Append("\r\n");
        if (Credentials(proxyUri, proxy) is { } basic)
            request.Append("Proxy-Authorization: Basic ").Append(basic).Append("\r\n");
        await stream.WriteAsync(Encoding.Latin1.GetBytes(request.Append("\r\n").ToString()), cancellationToken).ConfigureAwait(false);

        using var reader = new HttpHeadReader(limits, initialSize: 512);
        while (true)
        {
            int read = await stream.ReadAsync(reader.GetMemory(), cancellationToken).ConfigureAwait(false);
            if (read == 0)
                throw new WebSocketHandshakeException($"The proxy {proxyUri.Authority} closed the connection instead of answering CONNECT {authority}.");
            reader.Advance(read);
            var status = reader.TryReadResponse(out var head, out var error);
            if (status == OperationStatus.NeedMoreData)
                continue;
            if (status != OperationStatus.Done)
                throw new WebSocketHandshakeException($"The proxy {proxyUri.Authority} answered CONNECT with invalid HTTP: {error.Message}.");
            if (head!.StatusCode == 407)
                throw new WebSocketHandshakeException(
                    $"The proxy {proxyUri.Authority} needs credentials (407){(Credentials(proxyUri, proxy) is null ? "; give them in the proxy URI (http://user:password@host:port) or its Credentials" : ", and refused the ones given")}.",
                    407);
            if (head.StatusCode is < 200 or > 299)
                throw new WebSocketHandshakeException(
                    $"The proxy {proxyUri.Authority} refused CONNECT {authority}: {head.StatusCode} {head.ReasonPhrase}.", head.StatusCode);
            // The server speaks only after our TLS hello or upgrade request: a byte already here is not its.
            if (!reader.Leftover.IsEmpty)
                throw new WebSocketHandshakeException($"The proxy {proxyUri.Authority} sent bytes after its CONNECT answer.");
            return;
        }
    }

    // Basic credentials: from the proxy's Credentials (which the environment's proxy fills from
    // http://user:password@host), else from the proxy URI itself.
    private static string? Credentials(Uri proxyUri, IWebProxy? proxy)
    {
        string? user = null, password = null;
        if (proxy?.Credentials?.GetCredential(proxyUri, "Basic") is { } credential && !string.IsNullOrEmpty(credential.UserName))
        {
            user = credential.UserName;
            password = credential.Password;
        }
        else if (proxyUri.UserInfo is { Length: > 0 } info)
        {
            int colon = info.IndexOf(':');
            user = Uri.UnescapeDataString(colon < 0 ? info : info[..colon]);
            password = colon < 0 ? "" : Uri.UnescapeDataString(info[(colon + 1)..]);
        }
        return user is null ? null : Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));
    }
}

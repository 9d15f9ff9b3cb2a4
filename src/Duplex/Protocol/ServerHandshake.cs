using System.Text;

namespace Duplex.Protocol;

/// <summary>What a valid upgrade request asks for.</summary>
internal sealed record UpgradeRequest(
    HttpRequestHead Head,
    string Key,
    string? Origin,
    IReadOnlyList<string> SubProtocols,
    IReadOnlyList<ExtensionOffer> Extensions);

/// <summary>An HTTP answer that refuses an upgrade.</summary>
public sealed record HttpRejection(int StatusCode, string Message, IReadOnlyList<KeyValuePair<string, string>> Headers)
{
    /// <summary>A refusal with this status and plain-text message, and no extra headers.</summary>
    public HttpRejection(int statusCode, string message) : this(statusCode, message, []) { }
}

/// <summary>The server's side of the opening handshake (RFC 6455 §4.2).</summary>
internal static class ServerHandshake
{
    /// <summary>
    /// Checks a request head against §4.2.1. A refusal carries the status to answer with:
    /// 405 for a method other than GET, 426 (with the supported version) for a missing or
    /// unsupported Sec-WebSocket-Version or a missing Upgrade, 400 for the rest.
    /// </summary>
    public static bool TryValidate(HttpRequestHead head, out UpgradeRequest? request, out HttpRejection? rejection)
    {
        request = null;
        rejection = null;
        var headers = head.Headers;
        if (head.Method != "GET")
            return Reject(405, "WebSocket upgrades use GET", out rejection, new KeyValuePair<string, string>("Allow", "GET"));
        if (head.Version != "HTTP/1.1")
            return Reject(head.Version == "HTTP/1.0" ? 426 : 505, "WebSocket needs HTTP/1.1", out rejection, UpgradeHeaders);
        if (string.IsNullOrEmpty(headers["Host"]) || headers.CountOf("Host") > 1)
            return Reject(400, "missing or repeated Host header", out rejection);
        // An upgrade carries no body; one that does would have its body read as frames (as Kestrel does, refuse it).
        if (headers["Transfer-Encoding"] is not null || (headers["Content-Length"] is { } length && length.Trim() != "0"))
            return Reject(400, "an upgrade request has no body", out rejection);
        if (!headers.HasToken("Upgrade", "websocket"))
            return Reject(426, "this endpoint needs a WebSocket upgrade", out rejection, UpgradeHeaders);
        if (!headers.HasToken("Connection", "upgrade"))
            return Reject(400, "Connection header lacks the 'upgrade' token", out rejection);
        if (!IsVersionSupported(headers))
            return Reject(426, "unsupported Sec-WebSocket-Version", out rejection, UpgradeHeaders);
        string? key = headers["Sec-WebSocket-Key"];
        if (headers.CountOf("Sec-WebSocket-Key") != 1 || !Handshake.IsValidKey(key))
            return Reject(400, "missing or invalid Sec-WebSocket-Key", out rejection);
        return TryReadOffers(head, key!, out request, out rejection);
    }

    /// <summary>
    /// Checks a WebSocket request over HTTP/2 (RFC 8441 §4: an extended CONNECT with
    /// <c>:protocol websocket</c>, which the HTTP/2 server has checked). It has no key and gets no
    /// Sec-WebSocket-Accept; the version, subprotocols and extensions are as over HTTP/1.1.
    /// </summary>
    public static bool TryValidateExtendedConnect(HttpRequestHead head, out UpgradeRequest? request, out HttpRejection? rejection)
    {
        request = null;
        if (!IsVersionSupported(head.Headers))
            return Reject(400, "unsupported Sec-WebSocket-Version", out rejection,
                new KeyValuePair<string, string>("Sec-WebSocket-Version", Handshake.SupportedVersion));
        return TryReadOffers(head, key: "", out request, out rejection);
    }

    private static bool IsVersionSupported(HttpHeaders headers) =>
        headers["Sec-WebSocket-Version"] == Handshake.SupportedVersion && headers.CountOf("Sec-WebSocket-Version") == 1;

    // What both kinds of request offer: subprotocols and extensions, checked for syntax.
    private static bool TryReadOffers(HttpRequestHead head, string key, out UpgradeRequest? request, out HttpRejection? rejection)
    {
        request = null;
        rejection = null;
        var headers = head.Headers;
        var protocols = headers.GetList("Sec-WebSocket-Protocol");
        foreach (var protocol in protocols)
        {
            if (!HttpHeadParser.IsToken(protocol))
                return Reject(400, "invalid Sec-WebSocket-Protocol", out rejection);
        }
        if (!Handshake.TryParseExtensions(headers.GetList("Sec-WebSocket-Extensions"), out var extensions))
            return Reject(400, "invalid Sec-WebSocket-Extensions", out rejection);
        request = new UpgradeRequest(head, key, headers["Origin"], protocols, extensions);
        return true;
    }

    private static readonly KeyValuePair<string, string>[] UpgradeHeaders =
        [new("Sec-WebSocket-Version", Handshake.SupportedVersion), new("Upgrade", "websocket"), new("Connection", "Upgrade")];

    private static bool Reject(int status, string message, out HttpRejection rejection, params KeyValuePair<string, string>[] headers)
    {
        rejection = new HttpRejection(status, message, headers);
        return false;
    }

    /// <summary>The 101 response that completes the handshake.</summary>
    public static byte[] BuildAcceptResponse(string key, string? subProtocol, string? extensions,
        IEnumerable<KeyValuePair<string, string>>? extraHeaders = null)
    {
        var text = new StringBuilder(256)
            .Append("HTTP/1.1 101 Switching Protocols\r\n")
            .Append("Upgrade: websocket\r\n")
            .Append("Connection: Upgrade\r\n")
            .Append("Sec-WebSocket-Accept: ").Append(Handshake.ComputeAccept(key)).Append("\r\n");
        if (subProtocol is not null)
            text.Append("Sec-WebSocket-Protocol: ").Append(subProtocol).Append("\r\n");
        if (!string.IsNullOrEmpty(extensions))
            text.Append("Sec-WebSocket-Extensions: ").Append(extensions).Append("\r\n");
        AppendHeaders(text, extraHeaders);
        return Encoding.Latin1.GetBytes(text.Append("\r\n").ToString());
    }

    /// <summary>A complete plain-text HTTP response that closes the connection.</summary>
    public static byte[] BuildResponse(int statusCode, string body, IEnumerable<KeyValuePair<string, string>>? headers = null,
        string contentType = "text/plain; charset=utf-8")
    {
        byte[] content = Encoding.UTF8.GetBytes(body);
        var text = new StringBuilder(256)
            .Append("HTTP/1.1 ").Append(statusCode).Append(' ').Append(ReasonPhrase(statusCode)).Append("\r\n")
            .Append("Content-Type: ").Append(contentType).Append("\r\n")
            .Append("Content-Length: ").Append(content.Length).Append("\r\n")
            .Append("Connection: close\r\n");
        AppendHeaders(text, headers);
        byte[] head = Encoding.Latin1.GetBytes(text.Append("\r\n").ToString());
        return [.. head, .. content];
    }

    private static void AppendHeaders(StringBuilder text, IEnumerable<KeyValuePair<string, string>>? headers)
    {
        if (headers is null)
            return;
        foreach (var (name, value) in headers)
            text.Append(name).Append(": ").Append(value).Append("\r\n");
    }

    public static string ReasonPhrase(int statusCode) => statusCode switch
    {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    };
}

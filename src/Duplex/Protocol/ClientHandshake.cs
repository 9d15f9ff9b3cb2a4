using System.Text;

namespace Duplex.Protocol;

/// <summary>What the server agreed to in its 101 response.</summary>
internal sealed record UpgradeResponse(HttpResponseHead Head, string? SubProtocol, IReadOnlyList<ExtensionOffer> Extensions);

/// <summary>The client's side of the opening handshake (RFC 6455 §4.1).</summary>
internal static class ClientHandshake
{
    /// <summary>The GET request that asks for an upgrade.</summary>
    public static byte[] BuildRequest(Uri uri, string key, string? origin, IReadOnlyList<string> subProtocols,
        string? extensions, IEnumerable<KeyValuePair<string, string>>? extraHeaders)
    {
        string target = string.IsNullOrEmpty(uri.PathAndQuery) ? "/" : uri.PathAndQuery;
        var text = new StringBuilder(256)
            .Append("GET ").Append(target).Append(" HTTP/1.1\r\n")
            .Append("Host: ").Append(HostHeader(uri)).Append("\r\n")
            .Append("Upgrade: websocket\r\n")
            .Append("Connection: Upgrade\r\n")
            .Append("Sec-WebSocket-Key: ").Append(key).Append("\r\n")
            .Append("Sec-WebSocket-Version: ").Append(Handshake.SupportedVersion).Append("\r\n");
        if (origin is not null)
            text.Append("Origin: ").Append(origin).Append("\r\n");
        if (subProtocols.Count > 0)
            text.Append("Sec-WebSocket-Protocol: ").AppendJoin(", ", subProtocols).Append("\r\n");
        if (!string.IsNullOrEmpty(extensions))
            text.Append("Sec-WebSocket-Extensions: ").Append(extensions).Append("\r\n");
        if (extraHeaders is not null)
        {
            foreach (var (name, value) in extraHeaders)
            {
                if (!HttpHeadParser.IsToken(name) || value.Contains('\r') || value.Contains('\n'))
                    throw new ArgumentException($"Invalid header '{name}'.", nameof(extraHeaders));
                text.Append(name).Append(": ").Append(value).Append("\r\n");
            }
        }
        return Encoding.Latin1.GetBytes(text.Append("\r\n").ToString());
    }

    private static string HostHeader(Uri uri)
    {
        string host = uri.HostNameType == UriHostNameType.IPv6 ? $"[{uri.DnsSafeHost}]" : uri.IdnHost;
        bool defaultPort = uri.Port == (IsSecure(uri) ? 443 : 80);
        return defaultPort ? host : $"{host}:{uri.Port}";
    }

    public static bool IsSecure(Uri uri) => uri.Scheme is "wss" or "https";

    /// <summary>
    /// Checks the server's answer (§4.1 step 5 on): 101, the Upgrade and Connection tokens, the
    /// accept value, and that any subprotocol or extension chosen was offered.
    /// </summary>
    public static bool TryValidateResponse(HttpResponseHead head, string key, IReadOnlyList<string> offeredProtocols,
        IReadOnlyCollection<string> offeredExtensionNames, out UpgradeResponse? response, out string? error)
    {
        response = null;
        var headers = head.Headers;
        if (head.StatusCode != 101)
            return Fail($"server answered {head.StatusCode} {head.ReasonPhrase} instead of 101", out error);
        if (!headers.HasToken("Upgrade", "websocket"))
            return Fail("101 response lacks 'Upgrade: websocket'", out error);
        if (!headers.HasToken("Connection", "upgrade"))
            return Fail("101 response lacks 'Connection: Upgrade'", out error);
        if (headers.CountOf("Sec-WebSocket-Accept") != 1 || headers["Sec-WebSocket-Accept"] != Handshake.ComputeAccept(key))
            return Fail("wrong or missing Sec-WebSocket-Accept", out error);
        var chosen = headers.GetList("Sec-WebSocket-Protocol");
        string? protocol = null;
        if (chosen.Count > 1)
            return Fail("server chose more than one subprotocol", out error);
        if (chosen.Count == 1)
        {
            protocol = chosen[0];
            if (!offeredProtocols.Contains(protocol, StringComparer.Ordinal))
                return Fail($"server chose subprotocol '{protocol}', which was not offered", out error);
        }
        if (!Handshake.TryParseExtensions(headers.GetList("Sec-WebSocket-Extensions"), out var extensions))
            return Fail("malformed Sec-WebSocket-Extensions in response", out error);
        foreach (var extension in extensions)
        {
            if (!offeredExtensionNames.Contains(extension.Name, StringComparer.OrdinalIgnoreCase))
                return Fail($"server accepted extension '{extension.Name}', which was not offered", out error);
        }
        response = new UpgradeResponse(head, protocol, extensions);
        error = null;
        return true;
    }

    private static bool Fail(string message, out string? error)
    {
        error = message;
        return false;
    }
}

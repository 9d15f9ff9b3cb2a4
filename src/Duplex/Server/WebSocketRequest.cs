using System.Net;
using Duplex.Protocol;

namespace Duplex.Server;

/// <summary>What the server knows about one accepted connection's request.</summary>
public sealed class WebSocketRequest
{
    internal WebSocketRequest(UpgradeRequest request, EndPoint? remoteEndPoint, bool isSecure)
    {
        Request = request;
        RemoteEndPoint = remoteEndPoint;
        IsSecure = isSecure;
    }

    internal UpgradeRequest Request { get; }

    /// <summary>The subprotocols the client offered, in its order of preference.</summary>
    public IReadOnlyList<string> OfferedSubProtocols => Request.SubProtocols;

    /// <summary>The request's path, without the query.</summary>
    public string Path => Request.Head.Path;

    /// <summary>The query string, without '?'.</summary>
    public string Query => Request.Head.Query;

    /// <summary>The request's header fields.</summary>
    public HttpHeaders Headers => Request.Head.Headers;

    /// <summary>The Origin header (sent by browsers), or null.</summary>
    public string? Origin => Request.Origin;

    /// <summary>The client's address and port (a proxy's, behind a proxy).</summary>
    public EndPoint? RemoteEndPoint { get; }

    /// <summary>True over TLS (wss://).</summary>
    public bool IsSecure { get; }

    /// <summary>The subprotocol chosen for this connection, or null.</summary>
    public string? SubProtocol { get; internal set; }

    /// <summary>Room for the application's own per-connection state (set by an Authorize hook, for example).</summary>
    public IDictionary<string, object?> Items => _items ??= new Dictionary<string, object?>();

    private Dictionary<string, object?>? _items;

    /// <summary>The value of one query parameter, URL-decoded, or null.</summary>
    public string? GetQueryParameter(string name)
    {
        foreach (var pair in Query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            string key = Uri.UnescapeDataString((eq < 0 ? pair : pair[..eq]).Replace('+', ' '));
            if (key == name)
                return eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
        }
        return null;
    }
}

/// <summary>A plain HTTP answer from a route made with <see cref="WebSocketServer.MapHttp"/>.</summary>
public sealed record HttpReply(int StatusCode, string Body, string ContentType = "text/plain; charset=utf-8")
{
    /// <summary>More response headers (such as Access-Control-Allow-Origin or Cache-Control).</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? Headers { get; init; }
}

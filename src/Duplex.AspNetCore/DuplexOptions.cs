using Duplex.Server;

namespace Duplex.AspNetCore;

/// <summary>
/// Settings of every Duplex endpoint in an ASP.NET Core app: the connection settings of
/// <see cref="WebSocketOptions"/> (message size, keep-alive, timeouts, backpressure, compression)
/// and the origin policy. Bound from the configuration section "Duplex" by
/// <see cref="DuplexServiceCollectionExtensions.AddDuplex"/>, then changed by its delegate.
/// </summary>
/// <remarks>
/// <see cref="WebSocketOptions.UseEventLoop"/> has no effect here: Kestrel owns the sockets, and
/// connections read and write through the stream it hands over.
/// </remarks>
public sealed class DuplexOptions : WebSocketOptions
{
    /// <summary>
    /// Origins allowed to open connections, like "https://example.com" (case-insensitive; "*"
    /// allows any). Empty (the default) allows only pages served by this app's own host: a
    /// browser request whose Origin does not name the Host it was sent to gets 403, which stops
    /// cross-site WebSocket hijacking. Requests without an Origin (not browsers) are allowed.
    /// ASP.NET Core's CORS middleware does not apply to WebSockets; this does.
    /// </summary>
    public IList<string> AllowedOrigins { get; } = new List<string>();

    /// <summary>
    /// How long a connection has to finish its close after the app begins to stop (each open
    /// connection gets 1001 then). Default 5 s.
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

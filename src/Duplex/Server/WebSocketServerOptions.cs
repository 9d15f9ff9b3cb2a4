using System.Security.Cryptography.X509Certificates;
using Duplex.Protocol;

namespace Duplex.Server;

/// <summary>Settings for <see cref="WebSocketServer"/>.</summary>
public sealed class WebSocketServerOptions : WebSocketOptions
{
    /// <summary>The certificate (with its private key) for wss://; null serves plain ws://.</summary>
    public X509Certificate2? Certificate { get; set; }

    /// <summary>
    /// Origins allowed to open connections, like "https://example.com" (case-insensitive; "*"
    /// allows any). Empty (the default) allows only pages from this server itself: a browser
    /// request whose Origin does not name the Host it was sent to is refused with 403. That stops
    /// cross-site WebSocket hijacking (another site's page using the visitor's cookies to talk to
    /// this server). Requests with no Origin header (non-browser clients) are always allowed.
    /// </summary>
    public IList<string> AllowedOrigins { get; } = new List<string>();

    /// <summary>Open connections (including ones still in their handshake) beyond which new ones get 503. Default 100,000.</summary>
    public int MaxConnections { get; set; } = 100_000;

    /// <summary>
    /// Connections allowed in their TLS and HTTP handshake at once. Past it (or past
    /// <see cref="MaxConnections"/>) an upgrade gets 503, while plain HTTP routes such as a health
    /// check are still answered. Default 1,000.
    /// </summary>
    public int MaxPendingHandshakes { get; set; } = 1_000;

    /// <summary>
    /// Handshakes in progress from one IP address beyond which its new connections get 503 while
    /// the server is contended (over half of <see cref="MaxPendingHandshakes"/> in progress), so
    /// that one client's silent sockets cannot lock everyone else out. Below that, one address
    /// (a proxy in front, a burst of reconnects) may use the room. Default 256.
    /// </summary>
    public int MaxPendingHandshakesPerAddress { get; set; } = 256;

    /// <summary>Time a client has for TLS and its upgrade request. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Time <see cref="WebSocketServer.StopAsync"/> gives clients to answer the 1001 close. Default 5 s.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Limits on request heads; over them the client gets 431.</summary>
    public HttpHeadLimits HeadLimits { get; set; } = HttpHeadLimits.Default;

    /// <summary>
    /// Where the server logs, the .NET way (no provider is forced on you): Information for
    /// listening and stopping, each connection's open and close, each refused handshake (with its
    /// status) and each failed TLS handshake; Debug for handshakes that timed out; Warning for
    /// failed accepts; Error for an application callback or handler that threw. Category
    /// "Duplex.Server" is a good name for it.
    /// </summary>
    public Microsoft.Extensions.Logging.ILogger? Logger { get; set; }

    /// <summary>Receives the text of every Information-or-above event <see cref="Logger"/> would get, one line each (the simpler choice).</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Loads a certificate from a PFX/PKCS#12 file, or from PEM certificate and key files.</summary>
    public static X509Certificate2 LoadCertificate(string certificatePath, string? keyPath = null, string? password = null)
    {
        string extension = Path.GetExtension(certificatePath).ToLowerInvariant();
        if (keyPath is null && extension is ".pfx" or ".p12")
            return X509CertificateLoader.LoadPkcs12FromFile(certificatePath, password);
        using var pem = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        // Export and reload so that the private key works with SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }
}

/// <summary>How one route handles its upgrades.</summary>
public sealed class WebSocketRouteOptions
{
    /// <summary>Subprotocols this route speaks; the first one the client offers (in the client's order) is chosen.</summary>
    public IList<string> SubProtocols { get; } = new List<string>();

    /// <summary>Chooses a subprotocol from the client's offers instead of <see cref="SubProtocols"/>; must return one of them, or null.</summary>
    public Func<IReadOnlyList<string>, string?>? SelectSubProtocol { get; set; }

    /// <summary>permessage-deflate for this route, instead of the server's <see cref="WebSocketOptions.Compression"/>.</summary>
    public PerMessageDeflateOptions? Compression { get; set; }

    /// <summary>Turns permessage-deflate off on this route even when the server has it on.</summary>
    public bool NoCompression { get; set; }

    /// <summary>Runs before the 101 is sent: return a rejection (401, 403, …) to refuse the upgrade.</summary>
    public Func<WebSocketRequest, ValueTask<HttpRejection?>>? Authorize { get; set; }
}

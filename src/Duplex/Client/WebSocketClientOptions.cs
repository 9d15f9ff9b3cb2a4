using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Duplex.Protocol;

namespace Duplex;

/// <summary>Settings for <see cref="WebSocketClient.ConnectAsync"/>.</summary>
public sealed class WebSocketClientOptions : WebSocketOptions
{
    /// <summary>Subprotocols to offer, in order of preference.</summary>
    public IList<string> SubProtocols { get; } = new List<string>();

    /// <summary>The Origin header to send, or null for none (browsers always send one).</summary>
    public string? Origin { get; set; }

    /// <summary>Extra request headers (for example Authorization).</summary>
    public IList<KeyValuePair<string, string>> Headers { get; } = new List<KeyValuePair<string, string>>();

    /// <summary>Time for DNS, TCP, TLS and the upgrade together. Default 30 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Accept any server certificate for wss://. Off by default; turning it on gives up the
    /// protection TLS offers against a man in the middle, so keep it for tests and development.
    /// </summary>
    public bool AllowUntrustedCertificate { get; set; }

    /// <summary>A custom check of the server's certificate (used instead of the system's when set).</summary>
    public RemoteCertificateValidationCallback? RemoteCertificateValidation { get; set; }

    /// <summary>
    /// Certificate authorities to trust besides the system's, for a server whose certificate a
    /// private CA issued: its chain may end in one of these (the host name must still match).
    /// Ignored when <see cref="RemoteCertificateValidation"/> is set.
    /// </summary>
    public X509Certificate2Collection? TrustedAuthorities { get; set; }

    /// <summary>Certificates to present when the server asks for one.</summary>
    public X509CertificateCollection? ClientCertificates { get; set; }

    /// <summary>
    /// The HTTP proxy to tunnel through (HTTP CONNECT; credentials from its <c>Credentials</c> or
    /// from the proxy URI's user:password are sent as Basic). Null (the default) uses the
    /// system's proxy as <c>HttpClient</c> and <c>ClientWebSocket</c> do: on Linux and macOS the
    /// <c>HTTP_PROXY</c> (for ws://), <c>HTTPS_PROXY</c> (for wss://), <c>ALL_PROXY</c> and
    /// <c>NO_PROXY</c> environment variables. Only http:// proxies are supported.
    /// </summary>
    public System.Net.IWebProxy? Proxy { get; set; }

    /// <summary>False connects directly, whatever <see cref="Proxy"/> and the environment say. Default true.</summary>
    public bool UseProxy { get; set; } = true;

    /// <summary>Limits on the server's HTTP response head.</summary>
    public HttpHeadLimits HeadLimits { get; set; } = HttpHeadLimits.Default;
}

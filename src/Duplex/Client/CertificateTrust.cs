using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Duplex.Client;

/// <summary>How a client decides to trust a server's certificate (see <see cref="WebSocketClientOptions"/>).</summary>
internal static class CertificateTrust
{
    public static RemoteCertificateValidationCallback? CallbackFor(WebSocketClientOptions options) =>
        options.RemoteCertificateValidation
        ?? (options.AllowUntrustedCertificate ? static (_, _, _, _) => true
            : options.TrustedAuthorities is { Count: > 0 } authorities ? TrustAlso(authorities)
            : null);

    /// <summary>
    /// Accepts what the system trusts, and also a chain that ends in one of <paramref name="authorities"/>;
    /// the host name must match either way.
    /// </summary>
    public static RemoteCertificateValidationCallback TrustAlso(X509Certificate2Collection authorities) => (_, certificate, chain, errors) =>
    {
        if (errors == SslPolicyErrors.None)
            return true;
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            return false; // no certificate, or one for another name
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(authorities);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
            foreach (var element in chain.ChainElements)
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
        return custom.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    };
}

using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Duplex.Server;

namespace Duplex.Cli;

/// <summary>`duplex connect --ca` and `--cert/--key`: a private CA to trust, a certificate to present.</summary>
internal static class ClientTls
{
    public static X509Certificate2Collection LoadAuthorities(string path)
    {
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new UsageException($"--ca: cannot read '{path}': {e.Message}");
        }
        if (authorities.Count == 0)
            throw new UsageException($"--ca: '{path}' holds no PEM certificate");
        return authorities;
    }

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

    public static X509Certificate2 LoadClientCertificate(string path, string? keyPath)
    {
        try
        {
            return WebSocketServerOptions.LoadCertificate(path, keyPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new UsageException($"--cert: cannot load '{path}'{(keyPath is null ? "" : $" with the key '{keyPath}'")}: {e.Message}");
        }
    }
}

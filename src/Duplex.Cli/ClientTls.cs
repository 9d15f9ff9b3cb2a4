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

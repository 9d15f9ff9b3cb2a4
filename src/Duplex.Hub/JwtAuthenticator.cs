using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Duplex.Server;

namespace Duplex.Hub;

/// <summary>
/// HS256 JSON Web Tokens as hub identities: from <c>Authorization: Bearer</c>, or from an
/// <c>access_token</c> query parameter (browsers cannot set headers on a WebSocket).
/// Claims: <c>sub</c>, <c>channels</c> (may join), <c>publish</c> (may publish; default: channels), <c>exp</c>.
/// </summary>
public static class JwtAuthenticator
{
    public static Func<WebSocketRequest, HubIdentity?> Create(string secret, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        byte[] key = Encoding.UTF8.GetBytes(secret);
        var clock = time ?? TimeProvider.System;
        return request =>
        {
            string? token = request.Headers["Authorization"] is { } header && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                ? header[7..].Trim()
                : request.GetQueryParameter("access_token");
            return token is null ? null : Validate(token, key, clock.GetUtcNow());
        };
    }

    /// <summary>The identity in a valid token, or null.</summary>
    public static HubIdentity? Validate(string token, byte[] key, DateTimeOffset now)
    {
        var parts = token.Split('.');
        if (parts.Length != 3)
            return null;
        try
        {
            using var header = JsonDocument.Parse(FromBase64Url(parts[0]));
            if (header.RootElement.ValueKind != JsonValueKind.Object
                || !header.RootElement.TryGetProperty("alg", out var alg) || alg.GetString() != "HS256")
                return null;
            byte[] expected = HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]));
            if (!CryptographicOperations.FixedTimeEquals(expected, FromBase64Url(parts[2])))
                return null;
            using var payload = JsonDocument.Parse(FromBase64Url(parts[1]));
            var claims = payload.RootElement;
            if (claims.ValueKind != JsonValueKind.Object)
                return null;
            if (claims.TryGetProperty("exp", out var exp) && (!exp.TryGetInt64(out long seconds) || DateTimeOffset.FromUnixTimeSeconds(seconds) <= now))
                return null;
            string subject = claims.TryGetProperty("sub", out var sub) && sub.ValueKind == JsonValueKind.String ? sub.GetString()! : "";
            var join = List(claims, "channels") ?? [];
            var publish = List(claims, "publish") ?? join;
            return new HubIdentity(subject, join, publish);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Makes a token (for tests and for `duplex token`-like tooling).</summary>
    public static string Issue(string secret, string subject, IEnumerable<string> channels, IEnumerable<string>? publish = null,
        DateTimeOffset? expires = null)
    {
        string header = ToBase64Url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"u8);
        var claims = new Dictionary<string, object> { ["sub"] = subject, ["channels"] = channels.ToArray() };
        if (publish is not null)
            claims["publish"] = publish.ToArray();
        if (expires is { } at)
            claims["exp"] = at.ToUnixTimeSeconds();
        string body = ToBase64Url(JsonSerializer.SerializeToUtf8Bytes(claims));
        byte[] signature = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(header + "." + body));
        return header + "." + body + "." + ToBase64Url(signature);
    }

    private static List<string>? List(JsonElement claims, string name)
    {
        if (!claims.TryGetProperty(name, out var value))
            return null;
        return value.ValueKind switch
        {
            JsonValueKind.Array => value.EnumerateArray().Where(v => v.ValueKind == JsonValueKind.String).Select(v => v.GetString()!).ToList(),
            JsonValueKind.String => value.GetString()!.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList(),
            _ => [],
        };
    }

    private static byte[] FromBase64Url(string text)
    {
        string padded = text.Replace('-', '+').Replace('_', '/');
        padded += (padded.Length % 4) switch { 2 => "==", 3 => "=", 0 => "", _ => throw new FormatException() };
        return Convert.FromBase64String(padded);
    }

    private static string ToBase64Url(ReadOnlySpan<byte> bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

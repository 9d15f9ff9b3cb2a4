using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Duplex.Server;

namespace Duplex.Hub;

/// <summary>What a token must satisfy beyond its signature (RFC 7519 §4.1).</summary>
public sealed record JwtValidation
{
    /// <summary>Tolerance for clocks that differ between the issuer and this server, applied to <c>exp</c> and <c>nbf</c>. Default 30 s.</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>When set, the <c>iss</c> claim must equal it.</summary>
    public string? Issuer { get; init; }

    /// <summary>When set, the <c>aud</c> claim (a string or an array) must contain it.</summary>
    public string? Audience { get; init; }

    /// <summary>A 30 s clock skew, and no issuer or audience required.</summary>
    public static JwtValidation Default { get; } = new();
}

/// <summary>
/// HS256 JSON Web Tokens as hub identities: from <c>Authorization: Bearer</c>, or from an
/// <c>access_token</c> query parameter (browsers cannot set headers on a WebSocket).
/// Claims: <c>sub</c>, <c>channels</c> (may join), <c>publish</c> (may publish; default: channels),
/// <c>exp</c> and <c>nbf</c> (with <see cref="JwtValidation.ClockSkew"/>), <c>iss</c> and <c>aud</c>
/// when <see cref="JwtValidation"/> asks for them. A token with a repeated key is refused.
/// </summary>
public static class JwtAuthenticator
{
    /// <summary>
    /// An <see cref="HubOptions.Authenticate"/> function that accepts HS256 tokens signed with
    /// <paramref name="secret"/> and returns null (401) for a missing, malformed, expired or badly signed one.
    /// </summary>
    /// <param name="secret">The shared HMAC key (use at least 32 random bytes).</param>
    /// <param name="time">The clock for exp and nbf (tests replace it).</param>
    /// <param name="validation">Issuer, audience and clock skew to check.</param>
    public static Func<WebSocketRequest, HubIdentity?> Create(string secret, TimeProvider? time = null, JwtValidation? validation = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        byte[] key = Encoding.UTF8.GetBytes(secret);
        var clock = time ?? TimeProvider.System;
        return request =>
        {
            string? token = request.Headers["Authorization"] is { } header && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                ? header[7..].Trim()
                : request.GetQueryParameter("access_token");
            return token is null ? null : Validate(token, key, clock.GetUtcNow(), validation);
        };
    }

    /// <summary>The identity in a valid token, or null.</summary>
    public static HubIdentity? Validate(string token, byte[] key, DateTimeOffset now, JwtValidation? validation = null)
    {
        validation ??= JwtValidation.Default;
        var parts = token.Split('.');
        if (parts.Length != 3)
            return null;
        try
        {
            using var header = JsonDocument.Parse(FromBase64Url(parts[0]));
            if (!IsObjectWithUniqueKeys(header.RootElement)
                || !header.RootElement.TryGetProperty("alg", out var alg) || alg.GetString() != "HS256")
                return null;
            byte[] expected = HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]));
            if (!CryptographicOperations.FixedTimeEquals(expected, FromBase64Url(parts[2])))
                return null;
            using var payload = JsonDocument.Parse(FromBase64Url(parts[1]));
            var claims = payload.RootElement;
            if (!IsObjectWithUniqueKeys(claims))
                return null;
            // exp: refused from exp on (§4.1.4); nbf: refused before nbf (§4.1.5); both give the clock skew.
            if (claims.TryGetProperty("exp", out var exp) && (!exp.TryGetInt64(out long expires) || DateTimeOffset.FromUnixTimeSeconds(expires) + validation.ClockSkew <= now))
                return null;
            if (claims.TryGetProperty("nbf", out var nbf) && (!nbf.TryGetInt64(out long notBefore) || DateTimeOffset.FromUnixTimeSeconds(notBefore) - validation.ClockSkew > now))
                return null;
            if (validation.Issuer is { } issuer && !(claims.TryGetProperty("iss", out var iss) && iss.ValueKind == JsonValueKind.String && iss.GetString() == issuer))
                return null;
            if (validation.Audience is { } audience && !(List(claims, "aud") is { } audiences && audiences.Contains(audience)))
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
        DateTimeOffset? expires = null, DateTimeOffset? notBefore = null)
    {
        string header = ToBase64Url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"u8);
        var claims = new Dictionary<string, object> { ["sub"] = subject, ["channels"] = channels.ToArray() };
        if (publish is not null)
            claims["publish"] = publish.ToArray();
        if (expires is { } at)
            claims["exp"] = at.ToUnixTimeSeconds();
        if (notBefore is { } from)
            claims["nbf"] = from.ToUnixTimeSeconds();
        string body = ToBase64Url(JsonSerializer.SerializeToUtf8Bytes(claims));
        byte[] signature = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(header + "." + body));
        return header + "." + body + "." + ToBase64Url(signature);
    }

    // JSON allows a key twice and readers disagree on which one wins: such a token is refused.
    private static bool IsObjectWithUniqueKeys(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
            return false;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            if (!seen.Add(property.Name))
                return false;
        }
        return true;
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

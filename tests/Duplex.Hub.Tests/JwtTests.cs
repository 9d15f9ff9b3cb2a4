using System.Security.Cryptography;
using System.Text;

namespace Duplex.Hub.Tests;

/// <summary>Token checks on their own (RFC 7519 §4.1), at a fixed time.</summary>
public class JwtTests
{
    private const string Secret = "a-secret-of-sixteen-or-more";
    private static readonly byte[] Key = Encoding.UTF8.GetBytes(Secret);
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private static string Sign(string claimsJson, string headerJson = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}")
    {
        static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        string head = B64(Encoding.UTF8.GetBytes(headerJson)), body = B64(Encoding.UTF8.GetBytes(claimsJson));
        return head + "." + body + "." + B64(HMACSHA256.HashData(Key, Encoding.ASCII.GetBytes(head + "." + body)));
    }

    [Fact]
    public void Not_before_is_honoured_with_the_clock_skew()
    {
        var soon = JwtAuthenticator.Issue(Secret, "ada", ["*"], notBefore: Now.AddMinutes(5));
        Assert.Null(JwtAuthenticator.Validate(soon, Key, Now));
        Assert.NotNull(JwtAuthenticator.Validate(soon, Key, Now.AddMinutes(5)));
        var almost = JwtAuthenticator.Issue(Secret, "ada", ["*"], notBefore: Now.AddSeconds(20));
        Assert.NotNull(JwtAuthenticator.Validate(almost, Key, Now)); // within the default 30 s skew
        Assert.Null(JwtAuthenticator.Validate(almost, Key, Now, new JwtValidation { ClockSkew = TimeSpan.Zero }));
    }

    [Fact]
    public void Expiry_is_honoured_with_the_clock_skew()
    {
        var justExpired = JwtAuthenticator.Issue(Secret, "ada", ["*"], expires: Now.AddSeconds(-10));
        Assert.NotNull(JwtAuthenticator.Validate(justExpired, Key, Now));
        Assert.Null(JwtAuthenticator.Validate(justExpired, Key, Now, new JwtValidation { ClockSkew = TimeSpan.Zero }));
        Assert.Null(JwtAuthenticator.Validate(JwtAuthenticator.Issue(Secret, "ada", ["*"], expires: Now.AddMinutes(-1)), Key, Now));
        Assert.Null(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\",\"exp\":\"tomorrow\"}"), Key, Now));
    }

    [Fact]
    public void Issuer_and_audience_are_checked_when_asked_for()
    {
        var rules = new JwtValidation { Issuer = "https://auth.example", Audience = "chat" };
        Assert.NotNull(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\",\"iss\":\"https://auth.example\",\"aud\":[\"web\",\"chat\"]}"), Key, Now, rules));
        Assert.NotNull(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\",\"iss\":\"https://auth.example\",\"aud\":\"chat\"}"), Key, Now, rules));
        Assert.Null(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\",\"iss\":\"https://evil.example\",\"aud\":\"chat\"}"), Key, Now, rules));
        Assert.Null(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\",\"iss\":\"https://auth.example\",\"aud\":\"other\"}"), Key, Now, rules));
        Assert.Null(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\"}"), Key, Now, rules));
        Assert.NotNull(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\"}"), Key, Now)); // not asked for: not needed
    }

    [Fact]
    public void A_repeated_key_is_refused_in_the_claims_and_the_header()
    {
        Assert.Null(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\",\"channels\":[\"public\"],\"channels\":[\"*\"]}"), Key, Now));
        Assert.Null(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\"}", "{\"alg\":\"none\",\"alg\":\"HS256\"}"), Key, Now));
        Assert.NotNull(JwtAuthenticator.Validate(Sign("{\"sub\":\"a\",\"channels\":[\"public\"]}"), Key, Now));
    }
}

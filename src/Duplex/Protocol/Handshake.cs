using System.Security.Cryptography;
using System.Text;

namespace Duplex.Protocol;

/// <summary>An extension as offered or accepted in Sec-WebSocket-Extensions (RFC 6455 §9.1).</summary>
internal sealed record ExtensionOffer(string Name, IReadOnlyList<KeyValuePair<string, string?>> Parameters)
{
    public override string ToString()
    {
        var text = new StringBuilder(Name);
        foreach (var (key, value) in Parameters)
        {
            text.Append("; ").Append(key);
            if (value is not null)
                text.Append('=').Append(value);
        }
        return text.ToString();
    }
}

/// <summary>The rules of the opening handshake (RFC 6455 §4) that both roles share.</summary>
internal static class Handshake
{
    public const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    public const string SupportedVersion = "13";

    /// <summary>A fresh Sec-WebSocket-Key: 16 random bytes in Base64.</summary>
    public static string CreateKey()
    {
        Span<byte> nonce = stackalloc byte[16];
        RandomNumberGenerator.Fill(nonce);
        return Convert.ToBase64String(nonce);
    }

    /// <summary>Sec-WebSocket-Accept for a key: Base64 of SHA-1 of the key and the GUID.</summary>
    public static string ComputeAccept(string key)
    {
        Span<byte> input = stackalloc byte[Encoding.ASCII.GetMaxByteCount(key.Length) + Guid.Length];
        int length = Encoding.ASCII.GetBytes(key, input);
        length += Encoding.ASCII.GetBytes(Guid, input[length..]);
        Span<byte> hash = stackalloc byte[SHA1.HashSizeInBytes];
        SHA1.HashData(input[..length], hash);
        return Convert.ToBase64String(hash);
    }

    /// <summary>True when a key decodes to exactly 16 bytes.</summary>
    public static bool IsValidKey(string? key)
    {
        if (key is null || key.Length != 24)
            return false;
        Span<byte> decoded = stackalloc byte[18];
        return Convert.TryFromBase64String(key, decoded, out int written) && written == 16;
    }

    /// <summary>Parses Sec-WebSocket-Extensions: `name; param; param=value, name2 …`.</summary>
    public static bool TryParseExtensions(IEnumerable<string> elements, out List<ExtensionOffer> offers)
    {
        offers = [];
        foreach (var element in elements)
        {
            var parts = element.Split(';');
            string name = parts[0].Trim(' ', '\t');
            if (!HttpHeadParser.IsToken(name))
                return false;
            var parameters = new List<KeyValuePair<string, string?>>();
            for (int i = 1; i < parts.Length; i++)
            {
                string part = parts[i].Trim(' ', '\t');
                int eq = part.IndexOf('=');
                string key = (eq < 0 ? part : part[..eq]).Trim(' ', '\t');
                string? value = eq < 0 ? null : part[(eq + 1)..].Trim(' ', '\t');
                if (value is { Length: >= 2 } && value[0] == '"' && value[^1] == '"')
                    value = value[1..^1];
                if (!HttpHeadParser.IsToken(key) || (value is not null && !HttpHeadParser.IsToken(value)))
                    return false;
                parameters.Add(new(key, value));
            }
            offers.Add(new ExtensionOffer(name, parameters));
        }
        return true;
    }
}

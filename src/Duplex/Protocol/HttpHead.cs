using System.Buffers;
using System.Text;

namespace Duplex.Protocol;

/// <summary>Limits on an HTTP/1.1 head, so that junk or a flood of headers cannot cost memory.</summary>
public sealed record HttpHeadLimits
{
    /// <summary>Bytes from the first line to the blank line, inclusive.</summary>
    public int MaxHeadBytes { get; init; } = 16 * 1024;

    /// <summary>Header fields at most.</summary>
    public int MaxHeaderCount { get; init; } = 100;

    /// <summary>16 KiB and 100 fields: what browsers and proxies stay well within.</summary>
    public static HttpHeadLimits Default { get; } = new();
}

/// <summary>
/// Header fields in the order received, looked up without regard to case. Kept compactly as the
/// raw bytes of the head plus the offsets of each name and value, since a server holds one per
/// open connection; strings are made only when a field is asked for.
/// </summary>
public sealed class HttpHeaders
{
    private readonly byte[] _raw;
    private readonly int[] _spans; // per field: name start, name length, value start, value length

    internal HttpHeaders(byte[] raw, int[] spans)
    {
        _raw = raw;
        _spans = spans;
    }

    /// <summary>Headers another HTTP server has parsed already (ASP.NET Core's, say), as name and value pairs.</summary>
    internal static HttpHeaders FromFields(IEnumerable<KeyValuePair<string, string>> fields)
    {
        var raw = new List<byte>(512);
        var spans = new List<int>(64);
        foreach (var (name, value) in fields)
        {
            spans.Add(raw.Count);
            spans.Add(name.Length);
            raw.AddRange(Encoding.Latin1.GetBytes(name));
            spans.Add(raw.Count);
            spans.Add(value.Length);
            raw.AddRange(Encoding.Latin1.GetBytes(value));
        }
        return new HttpHeaders([.. raw], [.. spans]);
    }

    /// <summary>The number of header fields (a repeated name counts each time).</summary>
    public int Count => _spans.Length / 4;

    /// <summary>Every field as a name and value, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Fields =>
        Enumerable.Range(0, Count).Select(i => new KeyValuePair<string, string>(Name(i), Value(i))).ToList();

    private string Name(int i) => Encoding.Latin1.GetString(_raw, _spans[4 * i], _spans[4 * i + 1]);

    private string Value(int i) => Encoding.Latin1.GetString(_raw, _spans[4 * i + 2], _spans[4 * i + 3]);

    private bool NameIs(int i, string name) =>
        System.Text.Ascii.EqualsIgnoreCase(_raw.AsSpan(_spans[4 * i], _spans[4 * i + 1]), name);

    /// <summary>The first value of a field, or null when it is absent.</summary>
    public string? this[string name]
    {
        get
        {
            for (int i = 0; i < Count; i++)
            {
                if (NameIs(i, name))
                    return Value(i);
            }
            return null;
        }
    }

    /// <summary>How many fields have this name (case-insensitive).</summary>
    public int CountOf(string name)
    {
        int count = 0;
        for (int i = 0; i < Count; i++)
        {
            if (NameIs(i, name))
                count++;
        }
        return count;
    }

    /// <summary>
    /// The comma-separated elements of every field of this name (RFC 9110 §5.6.1), trimmed,
    /// empty ones dropped.
    /// </summary>
    public List<string> GetList(string name)
    {
        var items = new List<string>();
        for (int i = 0; i < Count; i++)
        {
            if (!NameIs(i, name))
                continue;
            foreach (var part in Value(i).Split(','))
            {
                var item = part.Trim(' ', '\t');
                if (item.Length > 0)
                    items.Add(item);
            }
        }
        return items;
    }

    /// <summary>True when a comma-separated field holds this token (case-insensitive).</summary>
    public bool HasToken(string name, string token)
    {
        foreach (var item in GetList(name))
        {
            if (string.Equals(item, token, StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }
}

/// <summary>A parsed request line and headers.</summary>
public sealed record HttpRequestHead(string Method, string Target, string Version, HttpHeaders Headers)
{
    /// <summary>The path of the target, without the query (the path of an absolute-form target too, RFC 9112 §3.2.2).</summary>
    public string Path => Origin.IndexOf('?') is var q and >= 0 ? Origin[..q] : Origin;

    /// <summary>The query of the target, without the '?', or empty.</summary>
    public string Query => Origin.IndexOf('?') is var q and >= 0 ? Origin[(q + 1)..] : "";

    // The target in origin form: "http://host:port/path?q" (absolute form, as proxies send) becomes "/path?q".
    private string Origin
    {
        get
        {
            if (Target.StartsWith('/'))
                return Target;
            int scheme = Target.IndexOf("://", StringComparison.Ordinal);
            if (scheme <= 0)
                return Target;
            int path = Target.IndexOf('/', scheme + 3);
            int query = Target.IndexOf('?', scheme + 3);
            if (path < 0 || (query >= 0 && query < path))
                return query < 0 ? "/" : "/" + Target[query..];
            return Target[path..];
        }
    }
}

/// <summary>A parsed status line and headers.</summary>
internal sealed record HttpResponseHead(string Version, int StatusCode, string ReasonPhrase, HttpHeaders Headers);

/// <summary>Why a head could not be parsed, and the HTTP status a server answers with.</summary>
internal readonly record struct HttpHeadError(int StatusCode, string Message);

/// <summary>
/// Parses HTTP/1.1 heads (RFC 9112) from raw bytes with limits. Never throws on junk: it
/// answers NeedMoreData, Done, or InvalidData with an error.
/// </summary>
internal static class HttpHeadParser
{
    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;

    /// <summary>Finds the end of a head; -1 until the blank line has arrived.</summary>
    public static int FindHeadEnd(ReadOnlySpan<byte> buffer)
    {
        int at = buffer.IndexOf("\r\n\r\n"u8);
        return at < 0 ? -1 : at + 4;
    }

    public static OperationStatus TryParseRequest(ReadOnlySpan<byte> buffer, HttpHeadLimits limits,
        out HttpRequestHead? request, out int consumed, out HttpHeadError error)
    {
        request = null;
        var status = TrySplit(buffer, limits, out var lines, out consumed, out error);
        if (status != OperationStatus.Done)
            return status;
        var parts = lines[0].Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || !IsToken(parts[0]) || parts[1].Length == 0)
            return Fail(400, "malformed request line", out error);
        if (!IsHttpVersion(parts[2]))
            return Fail(400, "malformed HTTP version", out error);
        if (!TryParseHeaders(buffer, consumed, limits, out var headers, out error))
            return OperationStatus.InvalidData;
        request = new HttpRequestHead(Intern(parts[0]), parts[1], Intern(parts[2]), headers);
        return OperationStatus.Done;
    }

    public static OperationStatus TryParseResponse(ReadOnlySpan<byte> buffer, HttpHeadLimits limits,
        out HttpResponseHead? response, out int consumed, out HttpHeadError error)
    {
        response = null;
        var status = TrySplit(buffer, limits, out var lines, out consumed, out error);
        if (status != OperationStatus.Done)
            return status;
        string line = lines[0];
        int sp1 = line.IndexOf(' ');
        if (sp1 < 0 || !IsHttpVersion(line[..sp1]))
            return Fail(502, "malformed status line", out error);
        int sp2 = line.IndexOf(' ', sp1 + 1);
        string code = sp2 < 0 ? line[(sp1 + 1)..] : line[(sp1 + 1)..sp2];
        if (code.Length != 3 || !int.TryParse(code, out int statusCode) || statusCode < 100)
            return Fail(502, "malformed status code", out error);
        if (!TryParseHeaders(buffer, consumed, limits, out var headers, out error))
            return OperationStatus.InvalidData;
        response = new HttpResponseHead(line[..sp1], statusCode, sp2 < 0 ? "" : line[(sp2 + 1)..], headers);
        return OperationStatus.Done;
    }

    // Only visible ASCII, spaces, tabs and line ends belong in a head; obs-text (0x80+) is allowed
    // in values. Searched vectorised: the check runs on every read of a head that is still arriving.
    private static readonly SearchValues<byte> ControlCharacters = SearchValues.Create(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127]);

    private static bool HasControlCharacter(ReadOnlySpan<byte> head) => head.IndexOfAny(ControlCharacters) >= 0;

    private static OperationStatus TrySplit(ReadOnlySpan<byte> buffer, HttpHeadLimits limits,
        out string[] lines, out int consumed, out HttpHeadError error)
    {
        lines = [];
        consumed = 0;
        error = default;
        // Junk is refused as soon as it arrives, not after the head limit or the handshake
        // timeout: most often a TLS ClientHello sent to a plain-text port.
        if (!buffer.IsEmpty && buffer[0] == 0x16)
            return Fail(400, "a TLS handshake on a plain-text port (use ws://, or enable TLS on the server)", out error);
        int end = FindHeadEnd(buffer);
        if (end < 0)
        {
            if (HasControlCharacter(buffer))
                return Fail(400, "control character in head", out error);
            return buffer.Length >= limits.MaxHeadBytes
                ? Fail(431, "request head too large", out error)
                : OperationStatus.NeedMoreData;
        }
        if (end > limits.MaxHeadBytes)
            return Fail(431, "request head too large", out error);
        var head = buffer[..(end - 4)];
        if (HasControlCharacter(head))
            return Fail(400, "control character in head", out error);
        int firstLineEnd = head.IndexOf("\r\n"u8);
        var firstLine = firstLineEnd < 0 ? head : head[..firstLineEnd];
        if (firstLine.IndexOfAny((byte)'\r', (byte)'\n') >= 0)
            return Fail(400, "bare CR or LF in head", out error);
        lines = [Encoding.Latin1.GetString(firstLine)];
        consumed = end;
        return OperationStatus.Done;
    }

    // The header fields after the first line, kept as raw bytes and offsets (see HttpHeaders).
    private static bool TryParseHeaders(ReadOnlySpan<byte> buffer, int consumed, HttpHeadLimits limits, out HttpHeaders headers, out HttpHeadError error)
    {
        headers = null!;
        error = default;
        var head = buffer[..(consumed - 4)];
        int firstLineEnd = head.IndexOf("\r\n"u8);
        byte[] raw = firstLineEnd < 0 ? [] : head[(firstLineEnd + 2)..].ToArray();
        var spans = new List<int>();
        int at = 0;
        while (at < raw.Length)
        {
            int lineEnd = raw.AsSpan(at).IndexOf("\r\n"u8);
            int length = lineEnd < 0 ? raw.Length - at : lineEnd;
            var line = raw.AsSpan(at, length);
            if (line.IndexOfAny((byte)'\r', (byte)'\n') >= 0)
            {
                error = new HttpHeadError(400, "bare CR or LF in head");
                return false;
            }
            int colon = line.IndexOf((byte)':');
            if (colon <= 0 || !IsToken(line[..colon]))
            {
                error = new HttpHeadError(400, "malformed header field");
                return false;
            }
            int valueStart = colon + 1, valueEnd = line.Length;
            while (valueStart < valueEnd && line[valueStart] is (byte)' ' or (byte)'\t')
                valueStart++;
            while (valueEnd > valueStart && line[valueEnd - 1] is (byte)' ' or (byte)'\t')
                valueEnd--;
            spans.AddRange([at, colon, at + valueStart, valueEnd - valueStart]);
            if (spans.Count / 4 > limits.MaxHeaderCount)
            {
                error = new HttpHeadError(431, "too many header fields");
                return false;
            }
            at += length + 2;
        }
        headers = new HttpHeaders(raw, [.. spans]);
        return true;
    }

    private static bool IsToken(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty)
            return false;
        foreach (byte c in value)
        {
            if (c <= 0x20 || c >= 0x7F || "\"(),/:;<=>?@[\\]{}"u8.Contains(c))
                return false;
        }
        return true;
    }

    // The usual method and version need not be a string per connection.
    private static string Intern(string text) => text switch
    {
        "GET" => "GET",
        "HTTP/1.1" => "HTTP/1.1",
        _ => text,
    };

    private static bool IsHttpVersion(string version) =>
        version.Length == 8 && version.StartsWith("HTTP/", StringComparison.Ordinal)
        && char.IsAsciiDigit(version[5]) && version[6] == '.' && char.IsAsciiDigit(version[7]);

    /// <summary>An RFC 9110 token: visible ASCII other than separators.</summary>
    public static bool IsToken(ReadOnlySpan<char> value)
    {
        if (value.IsEmpty)
            return false;
        foreach (char c in value)
        {
            if (c <= 0x20 || c >= 0x7F || "\"(),/:;<=>?@[\\]{}".Contains(c))
                return false;
        }
        return true;
    }

    private static OperationStatus Fail(int statusCode, string message, out HttpHeadError error)
    {
        error = new HttpHeadError(statusCode, message);
        return OperationStatus.InvalidData;
    }
}

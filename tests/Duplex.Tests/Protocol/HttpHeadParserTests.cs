using System.Buffers;
using System.Text;
using Duplex.Protocol;

namespace Duplex.Tests.Protocol;

public class HttpHeadParserTests
{
    private static OperationStatus Parse(string text, out HttpRequestHead? head, out HttpHeadError error, HttpHeadLimits? limits = null) =>
        HttpHeadParser.TryParseRequest(Encoding.Latin1.GetBytes(text), limits ?? HttpHeadLimits.Default, out head, out _, out error);

    [Fact]
    public void Parses_request_line_headers_and_query()
    {
        Assert.Equal(OperationStatus.Done, Parse("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\nX-Many: 1\r\nx-many: 2\r\n\r\n", out var head, out _));
        Assert.Equal("GET", head!.Method);
        Assert.Equal("/a/b", head.Path);
        Assert.Equal("x=1&y=2", head.Query);
        Assert.Equal("h", head.Headers["HOST"]);
        Assert.Equal(new[] { "1", "2" }, head.Headers.GetList("X-Many"));
    }

    [Fact]
    public void Needs_more_data_until_the_blank_line_at_every_split()
    {
        var bytes = Encoding.Latin1.GetBytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        for (int i = 0; i < bytes.Length; i++)
            Assert.Equal(OperationStatus.NeedMoreData, HttpHeadParser.TryParseRequest(bytes.AsSpan(0, i), HttpHeadLimits.Default, out _, out _, out _));
        Assert.Equal(OperationStatus.Done, HttpHeadParser.TryParseRequest(bytes, HttpHeadLimits.Default, out _, out int consumed, out _));
        Assert.Equal(bytes.Length, consumed);
    }

    [Theory]
    [InlineData("GET\r\n\r\n")]
    [InlineData("GET / HTTP/1.1 extra\r\n\r\n")]
    [InlineData("GET / HTTZ/1.1\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nNo colon here\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nX: a\u0001b\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n")]
    [InlineData("G(T / HTTP/1.1\r\n\r\n")]
    public void Refuses_malformed_heads_with_400(string text)
    {
        Assert.Equal(OperationStatus.InvalidData, Parse(text, out _, out var error));
        Assert.Equal(400, error.StatusCode);
    }

    [Fact]
    public void Refuses_a_head_over_the_size_limit_with_431_even_before_it_ends()
    {
        var limits = new HttpHeadLimits { MaxHeadBytes = 100 };
        Assert.Equal(OperationStatus.InvalidData, Parse("GET / HTTP/1.1\r\nX: " + new string('a', 200), out _, out var error, limits));
        Assert.Equal(431, error.StatusCode);
    }

    [Fact]
    public void Refuses_too_many_headers_with_431()
    {
        var limits = new HttpHeadLimits { MaxHeaderCount = 3 };
        Assert.Equal(OperationStatus.InvalidData, Parse("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", out _, out var error, limits));
        Assert.Equal(431, error.StatusCode);
    }

    [Fact]
    public void Never_throws_on_random_junk()
    {
        var random = new Random(42);
        for (int i = 0; i < 3000; i++)
        {
            var junk = new byte[random.Next(0, 200)];
            random.NextBytes(junk);
            if (random.Next(2) == 0 && junk.Length > 4)
                "\r\n\r\n"u8.CopyTo(junk.AsSpan(junk.Length - 4));
            _ = HttpHeadParser.TryParseRequest(junk, HttpHeadLimits.Default, out _, out _, out _);
            _ = HttpHeadParser.TryParseResponse(junk, HttpHeadLimits.Default, out _, out _, out _);
        }
    }

    [Fact]
    public void Parses_a_status_line()
    {
        var bytes = Encoding.Latin1.GetBytes("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        Assert.Equal(OperationStatus.Done, HttpHeadParser.TryParseResponse(bytes, HttpHeadLimits.Default, out var head, out _, out _));
        Assert.Equal(403, head!.StatusCode);
        Assert.Equal("Forbidden", head.ReasonPhrase);
    }
}

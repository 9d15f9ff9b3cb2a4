using System.Buffers;
using System.Text;
using Duplex.Protocol;

namespace Duplex.Tests.Protocol;

public class HandshakeTests
{
    [Fact]
    public void Computes_the_rfc_accept_value()
    {
        Assert.Equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", Handshake.ComputeAccept("dGhlIHNhbXBsZSBub25jZQ=="));
    }

    [Fact]
    public void Creates_keys_of_16_random_bytes()
    {
        string a = Handshake.CreateKey(), b = Handshake.CreateKey();
        Assert.NotEqual(a, b);
        Assert.Equal(16, Convert.FromBase64String(a).Length);
        Assert.True(Handshake.IsValidKey(a));
        Assert.False(Handshake.IsValidKey("dGhlIHNhbXBsZQ=="));       // 11 bytes
        Assert.False(Handshake.IsValidKey("not base64 at all!!!!!!!"));
        Assert.False(Handshake.IsValidKey(null));
    }

    private const string RfcRequest =
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n" +
        "Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    private static HttpRequestHead Parse(string text)
    {
        var status = HttpHeadParser.TryParseRequest(Encoding.Latin1.GetBytes(text), HttpHeadLimits.Default, out var head, out _, out var error);
        Assert.True(status == OperationStatus.Done, error.Message);
        return head!;
    }

    [Fact]
    public void Accepts_the_rfc_example_request()
    {
        Assert.True(ServerHandshake.TryValidate(Parse(RfcRequest), out var request, out _));
        Assert.Equal("/chat", request!.Head.Path);
        Assert.Equal("http://example.com", request.Origin);
        Assert.Equal(new[] { "chat", "superchat" }, request.SubProtocols);
        string response = Encoding.Latin1.GetString(ServerHandshake.BuildAcceptResponse(request.Key, "chat", null));
        Assert.StartsWith("HTTP/1.1 101 Switching Protocols\r\n", response);
        Assert.Contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", response);
        Assert.Contains("Sec-WebSocket-Protocol: chat\r\n", response);
        Assert.EndsWith("\r\n\r\n", response);
    }

    [Theory]
    [InlineData("POST /chat HTTP/1.1", null, null, 405)]
    [InlineData("GET /chat HTTP/1.0", null, null, 426)]
    [InlineData(null, "Host: server.example.com\r\n", "", 400)]
    [InlineData(null, "Upgrade: websocket\r\n", "", 426)]
    [InlineData(null, "Upgrade: websocket\r\n", "Upgrade: h2c\r\n", 426)]
    [InlineData(null, "Connection: Upgrade\r\n", "", 400)]
    [InlineData(null, "Connection: Upgrade\r\n", "Connection: keep-alive\r\n", 400)]
    [InlineData(null, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 400)]
    [InlineData(null, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "Sec-WebSocket-Key: c2hvcnQ=\r\n", 400)]
    [InlineData(null, "Sec-WebSocket-Version: 13\r\n", "", 426)]
    [InlineData(null, "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version: 8\r\n", 426)]
    public void Refuses_bad_requests_with_the_right_status(string? requestLine, string? remove, string? replacement, int status)
    {
        string text = RfcRequest;
        if (requestLine is not null)
            text = requestLine + text[text.IndexOf("\r\n", StringComparison.Ordinal)..];
        if (remove is not null)
            text = text.Replace(remove, replacement);
        Assert.False(ServerHandshake.TryValidate(Parse(text), out _, out var rejection));
        Assert.Equal(status, rejection!.StatusCode);
        if (status == 426)
            Assert.Contains(rejection.Headers, h => h.Key == "Sec-WebSocket-Version" && h.Value == "13");
    }

    [Fact]
    public void Connection_and_upgrade_are_token_lists_without_case()
    {
        string text = RfcRequest.Replace("Connection: Upgrade", "Connection: keep-alive, UPGRADE").Replace("Upgrade: websocket", "Upgrade: WebSocket");
        Assert.True(ServerHandshake.TryValidate(Parse(text), out _, out _));
    }

    [Fact]
    public void Parses_extension_offers_with_parameters()
    {
        string text = RfcRequest.Replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo; a=\"1\"\r\n\r\n");
        Assert.True(ServerHandshake.TryValidate(Parse(text), out var request, out _));
        Assert.Equal(2, request!.Extensions.Count);
        Assert.Equal("permessage-deflate", request.Extensions[0].Name);
        Assert.Equal("client_max_window_bits", request.Extensions[0].Parameters[0].Key);
        Assert.Null(request.Extensions[0].Parameters[0].Value);
        Assert.Equal("1", request.Extensions[1].Parameters[0].Value);
    }

    private static HttpResponseHead Response(string text)
    {
        Assert.Equal(OperationStatus.Done, HttpHeadParser.TryParseResponse(Encoding.Latin1.GetBytes(text), HttpHeadLimits.Default, out var head, out _, out _));
        return head!;
    }

    private const string Key = "dGhlIHNhbXBsZSBub25jZQ==";
    private const string GoodResponse = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    [Fact]
    public void Client_accepts_a_correct_101()
    {
        Assert.True(ClientHandshake.TryValidateResponse(Response(GoodResponse), Key, [], [], out var response, out _));
        Assert.Null(response!.SubProtocol);
    }

    [Theory]
    [InlineData("HTTP/1.1 101 Switching Protocols", "HTTP/1.1 200 OK", "200")]
    [InlineData("Upgrade: websocket", "Upgrade: h2c", "Upgrade")]
    [InlineData("Connection: Upgrade", "Connection: close", "Connection")]
    [InlineData("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "Accept")]
    [InlineData("\r\n\r\n", "\r\nSec-WebSocket-Protocol: other\r\n\r\n", "subprotocol")]
    [InlineData("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", "extension")]
    public void Client_rejects_a_wrong_response(string find, string replace, string mentioned)
    {
        string text = GoodResponse.Replace(find, replace);
        Assert.False(ClientHandshake.TryValidateResponse(Response(text), Key, ["chat"], [], out _, out var error));
        Assert.Contains(mentioned, error, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Client_accepts_the_subprotocol_it_offered()
    {
        string text = GoodResponse.Replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
        Assert.True(ClientHandshake.TryValidateResponse(Response(text), Key, ["superchat", "chat"], [], out var response, out _));
        Assert.Equal("chat", response!.SubProtocol);
    }

    [Fact]
    public void Client_request_has_every_required_header()
    {
        var bytes = ClientHandshake.BuildRequest(new Uri("ws://example.com:9001/path?q=1"), Key, "http://o.example", ["a", "b"], null,
            [new("Authorization", "Bearer x")]);
        string text = Encoding.Latin1.GetString(bytes);
        Assert.StartsWith("GET /path?q=1 HTTP/1.1\r\n", text);
        Assert.Contains("Host: example.com:9001\r\n", text);
        Assert.Contains("Sec-WebSocket-Key: " + Key, text);
        Assert.Contains("Sec-WebSocket-Version: 13\r\n", text);
        Assert.Contains("Sec-WebSocket-Protocol: a, b\r\n", text);
        Assert.Contains("Origin: http://o.example\r\n", text);
        Assert.Contains("Authorization: Bearer x\r\n", text);
        Assert.True(ServerHandshake.TryValidate(Parse(text), out _, out _));
    }

    [Fact]
    public void Client_request_refuses_header_injection()
    {
        Assert.Throws<ArgumentException>(() => ClientHandshake.BuildRequest(new Uri("ws://h/"), Key, null, [], null,
            [new("X-Test", "a\r\nEvil: 1")]));
    }
}

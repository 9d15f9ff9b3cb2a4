using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Security.Cryptography.X509Certificates;
using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Tests.Client;

public class WebSocketClientTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    // A fake server that reads the request and answers with whatever the test builds from its key.
    private static async Task<(Uri Uri, Task Served)> FakeServerAsync(Func<string, byte[]> answer)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var uri = new Uri($"ws://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/x");
        var served = Task.Run(async () =>
        {
            using var _ = listener;
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var head = new List<byte>();
            var one = new byte[1];
            while (!(head.Count >= 4 && head[^1] == '\n' && head[^2] == '\r' && head[^3] == '\n'))
            {
                if (await stream.ReadAsync(one) == 0)
                    return;
                head.Add(one[0]);
            }
            string request = Encoding.Latin1.GetString(head.ToArray());
            string key = request.Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:")).Split(':', 2)[1].Trim();
            await stream.WriteAsync(answer(key));
            await Task.Delay(500);
        });
        await Task.Yield();
        return (uri, served);
    }

    private static byte[] Ok(string key, string extra = "") => Encoding.Latin1.GetBytes(
        $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {Handshake.ComputeAccept(key)}\r\n{extra}\r\n");

    [Fact]
    public async Task Refusal_is_reported_with_its_status()
    {
        var (uri, _) = await FakeServerAsync(_ => "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
        var e = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(uri));
        Assert.Equal(403, e.StatusCode);
    }

    [Fact]
    public async Task Wrong_accept_fails_the_handshake()
    {
        var (uri, _) = await FakeServerAsync(_ => Ok(Handshake.CreateKey()));
        var e = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(uri));
        Assert.Contains("Accept", e.Message);
    }

    [Fact]
    public async Task Subprotocol_not_offered_fails_the_handshake()
    {
        var (uri, _) = await FakeServerAsync(key => Ok(key, "Sec-WebSocket-Protocol: evil\r\n"));
        var options = new WebSocketClientOptions();
        options.SubProtocols.Add("good");
        var e = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(uri, options));
        Assert.Contains("evil", e.Message);
    }

    [Fact]
    public async Task Frames_sent_with_the_101_are_received()
    {
        var (uri, _) = await FakeServerAsync(key => Frames.Concat(Ok(key), Frames.Build(Opcode.Text, "right away"u8)));
        await using var ws = await WebSocketClient.ConnectAsync(uri);
        Assert.Equal("right away", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out()
    {
        var (uri, _) = await FakeServerAsync(_ => []);
        var options = new WebSocketClientOptions { ConnectTimeout = TimeSpan.FromMilliseconds(300) };
        await Assert.ThrowsAsync<TimeoutException>(() => WebSocketClient.ConnectAsync(uri, options));
    }

    [Fact]
    public async Task Connection_refused_is_a_socket_error()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        await Assert.ThrowsAsync<SocketException>(() => WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/")));
    }

    [Theory]
    [InlineData("http://example.com/#frag")]
    [InlineData("ftp://example.com/")]
    public async Task Bad_uris_are_refused_before_connecting(string uri)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => WebSocketClient.ConnectAsync(new Uri(uri)));
    }

    [Fact]
    public async Task Wss_checks_the_certificate_unless_told_not_to()
    {
        var options = new Duplex.Server.WebSocketServerOptions { Certificate = TestCertificates.Localhost };
        await using var server = await Loopback.StartEchoServerAsync(options);
        var uri = server.Url(scheme: "wss");
        await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(uri));
        await using var ws = await WebSocketClient.ConnectAsync(uri, new WebSocketClientOptions { AllowUntrustedCertificate = true });
        await ws.SendTextAsync("secure");
        Assert.Equal("secure", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        await ws.CloseAsync();
        Assert.Equal(CloseStatus.NormalClosure, ws.CloseStatus);
    }

    [Fact]
    public async Task A_server_certificate_from_a_trusted_private_authority_is_accepted_and_one_from_another_is_not()
    {
        // TrustedAuthorities adds to what the system trusts: the self-signed test certificate is
        // its own authority here; an unrelated authority must not make it trusted.
        var options = new Duplex.Server.WebSocketServerOptions { Certificate = TestCertificates.Localhost };
        await using var server = await Loopback.StartEchoServerAsync(options);
        var uri = server.Url(scheme: "wss");
        using var localhostAuthority = X509CertificateLoader.LoadCertificate(TestCertificates.Localhost.RawData);
        using var otherAuthority = TestCertificates.Create("other.test");

        await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(uri,
            new WebSocketClientOptions { TrustedAuthorities = [otherAuthority] }));
        await using var ws = await WebSocketClient.ConnectAsync(uri,
            new WebSocketClientOptions { TrustedAuthorities = [localhostAuthority] });
        await ws.SendTextAsync("private ca");
        Assert.Equal("private ca", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        await ws.CloseAsync();
        Assert.Equal(CloseStatus.NormalClosure, ws.CloseStatus);
    }
}

using System.Net;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Tests.Client;

/// <summary>The client through HTTP CONNECT proxies, as it is deployed behind corporate ones.</summary>
public class ProxyTests
{
    [Fact]
    public async Task Ws_and_wss_go_through_an_explicit_proxy()
    {
        await using var proxy = new ConnectProxy();
        await using var plain = await Loopback.StartEchoServerAsync();
        await using var secure = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { Certificate = TestCertificates.Localhost });
        foreach (var (server, scheme) in new[] { (plain, "ws"), (secure, "wss") })
        {
            var options = new WebSocketClientOptions { Proxy = new WebProxy(proxy.Uri), AllowUntrustedCertificate = true };
            await using var client = await WebSocketClient.ConnectAsync(server.Url(scheme: scheme), options);
            await client.SendTextAsync($"via the proxy over {scheme}");
            Assert.Equal($"via the proxy over {scheme}", (await client.ReceiveAsync()).GetText());
        }
        Assert.Equal([$"127.0.0.1:{plain.LocalEndPoint!.Port}", $"127.0.0.1:{secure.LocalEndPoint!.Port}"], proxy.Requests.Select(r => r.Target));
    }

    [Fact]
    public async Task Credentials_in_the_proxy_uri_or_its_credentials_are_sent_and_a_407_says_what_is_missing()
    {
        string expected = "Basic " + Convert.ToBase64String("alice:s3cr:t"u8.ToArray());
        await using var proxy = new ConnectProxy(requiredAuthorization: expected);
        await using var server = await Loopback.StartEchoServerAsync();

        var none = new WebSocketClientOptions { Proxy = new WebProxy(proxy.Uri) };
        var missing = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(server.Url(), none));
        Assert.Equal(407, missing.StatusCode);
        Assert.Contains("needs credentials", missing.Message, StringComparison.Ordinal);

        var inUri = new WebSocketClientOptions { Proxy = new WebProxy(new Uri($"http://alice:s3cr%3At@127.0.0.1:{proxy.Port}")) };
        await using (var client = await WebSocketClient.ConnectAsync(server.Url(), inUri))
            Assert.Equal(ConnectionState.Open, client.State);

        var given = new WebSocketClientOptions { Proxy = new WebProxy(proxy.Uri) { Credentials = new NetworkCredential("alice", "s3cr:t") } };
        await using (var client = await WebSocketClient.ConnectAsync(server.Url(), given))
            Assert.Equal(ConnectionState.Open, client.State);

        var wrong = new WebSocketClientOptions { Proxy = new WebProxy(proxy.Uri) { Credentials = new NetworkCredential("alice", "nope") } };
        var refused = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(server.Url(), wrong));
        Assert.Contains("refused the ones given", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bypassed_hosts_and_UseProxy_false_connect_directly()
    {
        await using var proxy = new ConnectProxy();
        await using var server = await Loopback.StartEchoServerAsync();
        var bypassed = new WebSocketClientOptions { Proxy = new WebProxy(proxy.Uri) { BypassList = [@"127\.0\.0\.1"] } };
        await using (var client = await WebSocketClient.ConnectAsync(server.Url(), bypassed))
            Assert.Equal(ConnectionState.Open, client.State);
        var off = new WebSocketClientOptions { Proxy = new WebProxy(proxy.Uri), UseProxy = false };
        await using (var client = await WebSocketClient.ConnectAsync(server.Url(), off))
            Assert.Equal(ConnectionState.Open, client.State);
        Assert.Empty(proxy.Requests);
    }

    [Fact]
    public async Task A_proxy_that_refuses_the_target_gives_its_status()
    {
        await using var proxy = new ConnectProxy();
        int closedPort = LocalPorts.Free();
        var options = new WebSocketClientOptions { Proxy = new WebProxy(proxy.Uri) };
        // The test proxy drops the connection when it cannot reach the target.
        var error = await Assert.ThrowsAsync<WebSocketHandshakeException>(() =>
            WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{closedPort}/echo"), options));
        Assert.Contains("proxy", error.Message, StringComparison.Ordinal);
    }
}

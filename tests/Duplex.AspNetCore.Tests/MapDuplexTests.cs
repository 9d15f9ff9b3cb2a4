using System.Net;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Text;
using Duplex.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using DuplexCloseStatus = Duplex.Protocol.CloseStatus;

namespace Duplex.AspNetCore.Tests;

public class MapDuplexTests
{
    internal static async Task Echo(WebSocketConnection connection, HttpContext context)
    {
        await foreach (var message in connection.ReadAllAsync())
            await connection.SendAsync(message.Payload, message.Type);
    }

    private static Task<TestApp> StartEchoAsync(Action<DuplexOptions>? configure = null, WebSocketRouteOptions? route = null,
        HttpProtocols protocols = HttpProtocols.Http1AndHttp2, bool tls = false) =>
        TestApp.StartAsync(builder => builder.Services.AddDuplex(configure), app => app.MapDuplex("/echo", Echo, route), protocols, tls);

    [Fact]
    public async Task Duplex_client_over_http11_gets_the_subprotocol_compression_and_its_messages_back()
    {
        var route = new WebSocketRouteOptions();
        route.SubProtocols.Add("chat.v2");
        await using var app = await StartEchoAsync(o => o.Compression = PerMessageDeflateOptions.ForServer(), route);
        var options = new WebSocketClientOptions { Compression = new PerMessageDeflateOptions() };
        options.SubProtocols.Add("chat.v1");
        options.SubProtocols.Add("chat.v2");
        await using var client = await WebSocketClient.ConnectAsync(app.WebSocketUri("/echo"), options);
        Assert.Equal("chat.v2", client.SubProtocol);
        Assert.NotNull(client.Compression);
        byte[] big = new byte[200_000];
        new Random(7).NextBytes(big.AsSpan(0, 100_000)); // half random, half zeros: compressed frames of both kinds
        await client.SendTextAsync("héllo 👋");
        await client.SendBinaryAsync(big);
        var text = await client.ReceiveAsync();
        Assert.Equal("héllo 👋", text.GetText());
        var binary = await client.ReceiveAsync();
        Assert.Equal(big, binary.ToArray());
        await client.CloseAsync();
        Assert.Equal(DuplexCloseStatus.NormalClosure, client.CloseStatus);
    }

    [Fact]
    public async Task ClientWebSocket_over_http11_round_trips()
    {
        await using var app = await StartEchoAsync();
        using var client = new ClientWebSocket();
        client.Options.CollectHttpResponseDetails = true;
        await client.ConnectAsync(app.WebSocketUri("/echo"), CancellationToken.None);
        Assert.Equal(HttpStatusCode.SwitchingProtocols, client.HttpStatusCode);
        await AssertEchoesAsync(client, 70_000);
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ClientWebSocket_over_http2_extended_connect_round_trips_past_the_request_body_limit(bool tls)
    {
        var route = new WebSocketRouteOptions();
        route.SubProtocols.Add("v1");
        await using var app = await TestApp.StartAsync(
            builder =>
            {
                builder.Services.AddDuplex();
                builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 1024);
            },
            a => a.MapDuplex("/echo", Echo, route),
            tls ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http2, tls);
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        using var invoker = new HttpMessageInvoker(handler);
        using var client = new ClientWebSocket();
        client.Options.HttpVersion = HttpVersion.Version20;
        client.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        client.Options.CollectHttpResponseDetails = true;
        client.Options.AddSubProtocol("v1");
        await client.ConnectAsync(app.WebSocketUri("/echo"), invoker, CancellationToken.None);
        Assert.Equal(HttpStatusCode.OK, client.HttpStatusCode); // 200 on an HTTP/2 stream, not 101
        Assert.Equal("v1", client.SubProtocol);
        for (int i = 0; i < 3; i++)
            await AssertEchoesAsync(client, 100_000); // 300 KB through a stream whose body limit is 1 KiB
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
    }

    internal static async Task AssertEchoesAsync(WebSocket client, int size)
    {
        byte[] sent = new byte[size];
        new Random(size).NextBytes(sent);
        await client.SendAsync(sent, WebSocketMessageType.Binary, true, CancellationToken.None);
        byte[] received = new byte[size + 1];
        int total = 0;
        while (true)
        {
            var result = await client.ReceiveAsync(received.AsMemory(total), CancellationToken.None);
            total += result.Count;
            if (result.EndOfMessage)
                break;
        }
        Assert.Equal(sent, received[..total]);
    }

    [Fact]
    public async Task Requests_that_are_not_upgrades_get_the_standalone_servers_answers()
    {
        await using var app = await StartEchoAsync();
        using var http = new HttpClient();
        var get = await http.GetAsync(app.HttpUri("/echo"));
        Assert.Equal(HttpStatusCode.UpgradeRequired, get.StatusCode);
        Assert.Equal("websocket", get.Headers.Upgrade.Single().Name);
        var post = await http.PostAsync(app.HttpUri("/echo"), new StringContent("x"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        var error = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(app.WebSocketUri("/nowhere")));
        Assert.Equal(404, error.StatusCode);
    }

    [Fact]
    public async Task Origins_follow_the_policy_bound_from_configuration()
    {
        await using var app = await TestApp.StartAsync(
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Duplex:AllowedOrigins:0"] = "https://app.example",
                    ["Duplex:MaxMessageSize"] = "1000",
                });
                builder.Services.AddDuplex();
            },
            a => a.MapDuplex("/echo", Echo));
        var foreign = new WebSocketClientOptions { Origin = "https://evil.example" };
        var refused = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(app.WebSocketUri("/echo"), foreign));
        Assert.Equal(403, refused.StatusCode);
        await using var client = await WebSocketClient.ConnectAsync(app.WebSocketUri("/echo"), new WebSocketClientOptions { Origin = "https://app.example" });
        await client.SendBinaryAsync(new byte[1001]); // over the configured limit
        var closed = await client.ReceiveAsync();
        Assert.True(closed.IsClose);
        Assert.Equal(DuplexCloseStatus.MessageTooBig, closed.CloseStatus);
    }

    [Fact]
    public async Task A_page_from_another_site_is_refused_by_default_and_one_from_this_host_is_not()
    {
        await using var app = await StartEchoAsync();
        var refused = await Assert.ThrowsAsync<WebSocketHandshakeException>(() =>
            WebSocketClient.ConnectAsync(app.WebSocketUri("/echo"), new WebSocketClientOptions { Origin = "https://evil.example" }));
        Assert.Equal(403, refused.StatusCode);
        await using var client = await WebSocketClient.ConnectAsync(app.WebSocketUri("/echo"),
            new WebSocketClientOptions { Origin = $"http://{app.Address.Authority}" });
        Assert.Equal(ConnectionState.Open, client.State);
    }

    [Fact]
    public async Task Authorization_policies_answer_before_the_upgrade_and_the_handler_sees_the_user()
    {
        await using var app = await TestApp.StartAsync(
            builder =>
            {
                HeaderAuthentication.AddTo(builder);
                builder.Services.AddDuplex();
            },
            a =>
            {
                a.UseAuthentication();
                a.UseAuthorization();
                a.MapDuplex("/admin", async (WebSocketConnection ws, ClaimsPrincipal user) =>
                    await ws.SendTextAsync($"hello {user.Identity!.Name}")).RequireAuthorization("admins");
            });
        var anonymous = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(app.WebSocketUri("/admin")));
        Assert.Equal(401, anonymous.StatusCode);
        var bob = new WebSocketClientOptions();
        bob.Headers.Add(new("X-User", "bob"));
        var forbidden = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(app.WebSocketUri("/admin"), bob));
        Assert.Equal(403, forbidden.StatusCode);
        var alice = new WebSocketClientOptions();
        alice.Headers.Add(new("X-User", "alice"));
        alice.Headers.Add(new("X-Role", "admin"));
        await using var client = await WebSocketClient.ConnectAsync(app.WebSocketUri("/admin"), alice);
        Assert.Equal("hello alice", (await client.ReceiveAsync()).GetText());
        var end = await client.ReceiveAsync(); // the handler returned: 1000
        Assert.Equal(DuplexCloseStatus.NormalClosure, end.CloseStatus);
    }

    internal sealed class Counter
    {
        private int _next;

        public int Next() => Interlocked.Increment(ref _next);
    }

    internal sealed class PerRequest
    {
        public Guid Id { get; } = Guid.NewGuid();
    }

    [Fact]
    public async Task Handler_parameters_come_from_the_apps_services()
    {
        await using var app = await TestApp.StartAsync(
            builder =>
            {
                builder.Services.AddDuplex();
                builder.Services.AddSingleton<Counter>();
                builder.Services.AddScoped<PerRequest>();
            },
            a => a.MapDuplex("/count", async (WebSocketConnection ws, Counter counter, PerRequest scoped, HttpContext context, CancellationToken aborted) =>
            {
                Assert.Same(context.RequestServices.GetRequiredService<PerRequest>(), scoped);
                await ws.SendTextAsync(counter.Next().ToString(System.Globalization.CultureInfo.InvariantCulture), aborted);
            }));
        for (int expected = 1; expected <= 3; expected++)
        {
            await using var client = await WebSocketClient.ConnectAsync(app.WebSocketUri("/count"));
            Assert.Equal(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), (await client.ReceiveAsync()).GetText());
        }
    }

    [Fact]
    public async Task A_handler_that_throws_closes_with_1011()
    {
        await using var app = await TestApp.StartAsync(b => b.Services.AddDuplex(),
            a => a.MapDuplex("/fail", (WebSocketConnection ws, HttpContext _) => throw new InvalidOperationException("boom")));
        await using var client = await WebSocketClient.ConnectAsync(app.WebSocketUri("/fail"));
        var end = await client.ReceiveAsync();
        Assert.Equal(DuplexCloseStatus.InternalServerError, end.CloseStatus);
    }

    [Fact]
    public async Task A_handler_that_cannot_be_bound_fails_at_startup()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => TestApp.StartAsync(b => b.Services.AddDuplex(),
            a => a.MapDuplex("/bad", (WebSocketConnection ws) => 42)));
        Assert.Contains("returns Task", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stopping_the_app_closes_its_connections_with_1001()
    {
        var app = await StartEchoAsync();
        await using var client = await WebSocketClient.ConnectAsync(app.WebSocketUri("/echo"));
        var receiving = client.ReceiveAsync().AsTask();
        await app.DisposeAsync();
        var end = await receiving.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(DuplexCloseStatus.GoingAway, end.CloseStatus);
    }

    // Closes by either side end cleanly: no 1006 on either end, over HTTP/1.1 and HTTP/2.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_thousand_connections_closed_by_either_side_all_end_with_1000(bool http2)
    {
        var serverEnds = new System.Collections.Concurrent.ConcurrentBag<DuplexCloseStatus?>();
        double slowestEnd = 0; // seconds, under the lock of serverEnds
        await using var app = await TestApp.StartAsync(b => b.Services.AddDuplex(), a => a.MapDuplex("/close", async (WebSocketConnection ws, HttpContext context) =>
        {
            if (context.Request.Query["by"] == "server")
            {
                await ws.SendTextAsync("bye");
                await ws.CloseAsync(DuplexCloseStatus.NormalClosure, "server done");
            }
            else
            {
                await foreach (var _ in ws.ReadAllAsync())
                {
                }
            }
            // Once the close frames are exchanged the server ends the stream: it must not wait
            // out the close timeout for a FIN the client waits for from it.
            var ending = System.Diagnostics.Stopwatch.StartNew();
            await ws.Completion;
            lock (serverEnds)
                slowestEnd = Math.Max(slowestEnd, ending.Elapsed.TotalSeconds);
            serverEnds.Add(ws.CloseStatus);
        }), http2 ? HttpProtocols.Http2 : HttpProtocols.Http1);
        using var handler = new SocketsHttpHandler();
        using var invoker = new HttpMessageInvoker(handler);
        var clientEnds = new System.Collections.Concurrent.ConcurrentBag<WebSocketCloseStatus?>();
        const int Connections = 1000;
        await Parallel.ForAsync(0, Connections, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
        {
            bool byServer = i % 2 == 0;
            using var client = new ClientWebSocket();
            if (http2)
            {
                client.Options.HttpVersion = HttpVersion.Version20;
                client.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
            }
            await client.ConnectAsync(app.WebSocketUri($"/close?by={(byServer ? "server" : "client")}"), invoker, CancellationToken.None);
            if (byServer)
            {
                var buffer = new byte[64];
                while ((await client.ReceiveAsync(buffer, CancellationToken.None)).MessageType != WebSocketMessageType.Close)
                {
                }
                await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
            }
            else
            {
                await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "client done", CancellationToken.None);
            }
            clientEnds.Add(client.CloseStatus);
        });
        await WaitUntilAsync(() => serverEnds.Count == Connections);
        Assert.Equal(Connections, clientEnds.Count(s => s == WebSocketCloseStatus.NormalClosure));
        Assert.Equal(Connections, serverEnds.Count(s => s == DuplexCloseStatus.NormalClosure));
        Assert.True(slowestEnd < 2.5, $"a server connection took {slowestEnd:0.0} s to end after its close");
    }

    internal static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition() && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.True(condition());
    }

    [Fact]
    public async Task Duplex_and_ClientWebSocket_agree_on_a_text_message_split_across_frames()
    {
        await using var app = await StartEchoAsync();
        using var client = new ClientWebSocket();
        await client.ConnectAsync(app.WebSocketUri("/echo"), CancellationToken.None);
        byte[] utf8 = Encoding.UTF8.GetBytes("naïve ☃ text");
        await client.SendAsync(utf8.AsMemory(0, 3), WebSocketMessageType.Text, false, CancellationToken.None);
        await client.SendAsync(utf8.AsMemory(3), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[100];
        var result = await client.ReceiveAsync(buffer, CancellationToken.None);
        Assert.Equal(WebSocketMessageType.Text, result.MessageType);
        Assert.Equal("naïve ☃ text", Encoding.UTF8.GetString(buffer, 0, result.Count));
    }
}

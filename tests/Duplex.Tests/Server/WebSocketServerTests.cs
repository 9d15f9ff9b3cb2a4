using System.Net;
using System.Net.Sockets;
using Duplex.Cli;
using Duplex.Protocol;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Tests.Server;

public class WebSocketServerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static string Request(IPEndPoint endPoint, string path = "/echo", string method = "GET", string version = "HTTP/1.1",
        string? headers = null, bool key = true) =>
        $"{method} {path} {version}\r\nHost: {endPoint}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        (key ? $"Sec-WebSocket-Key: {Handshake.CreateKey()}\r\n" : "") + $"Sec-WebSocket-Version: 13\r\n{headers}\r\n";

    private static async Task<string> AskAsync(WebSocketServer server, string request)
    {
        await using var client = await RawClient.ConnectAsync(server.LocalEndPoint!);
        await client.SendAsync(request);
        return await client.ReadToEndAsync();
    }

    [Fact]
    public async Task Plain_get_on_a_websocket_path_gets_426_with_the_version()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        string response = await AskAsync(server, $"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 426 ", response);
        Assert.Contains("Sec-WebSocket-Version: 13\r\n", response);
    }

    [Fact]
    public async Task An_upgrade_with_a_body_gets_400()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var endPoint = server.LocalEndPoint!;
        // The body would otherwise be read as the first WebSocket frames.
        Assert.StartsWith("HTTP/1.1 400 ", await AskAsync(server, Request(endPoint, headers: "Content-Length: 6\r\n") + "\x81\x80abcd"));
        Assert.StartsWith("HTTP/1.1 400 ", await AskAsync(server, Request(endPoint, headers: "Transfer-Encoding: chunked\r\n") + "0\r\n\r\n"));
        await using (await RawClient.UpgradeAsync(endPoint, extraHeaders: "Content-Length: 0\r\n")) { }
    }

    [Fact]
    public async Task An_absolute_form_target_reaches_its_route()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var endPoint = server.LocalEndPoint!;
        await using var client = await RawClient.UpgradeAsync(endPoint, $"http://{endPoint}/echo?x=1"); // throws unless 101
        await client.SendAsync(Frames.ClientText("absolute"));
        Assert.Equal("absolute", (await client.ReadFrameAsync())!.Text);
    }

    [Fact]
    public async Task A_tls_client_on_a_plain_port_gets_400_at_once()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        await using var client = await RawClient.ConnectAsync(server.LocalEndPoint!);
        // The first bytes of a TLS 1.2/1.3 ClientHello record.
        await client.SendAsync(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03 });
        var started = DateTime.UtcNow;
        string response = await client.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 400 ", response);
        Assert.Contains("TLS", response);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(3), "answered only after the handshake timeout");
    }

    [Fact]
    public async Task Past_the_pending_handshake_limit_upgrades_get_503_but_health_checks_are_answered()
    {
        var options = new WebSocketServerOptions { MaxPendingHandshakes = 20 };
        await using var server = await Loopback.StartEchoServerAsync(options, s =>
            s.MapHttp("/healthz", _ => ValueTask.FromResult(new HttpReply(200, "ok"))));
        var endPoint = server.LocalEndPoint!;
        var silent = new List<RawClient>();
        for (int i = 0; i < 20; i++)
            silent.Add(await RawClient.ConnectAsync(endPoint)); // connected, and never a byte
        await Task.Delay(200);
        Assert.StartsWith("HTTP/1.1 200 ", await AskAsync(server, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
        string refused = await AskAsync(server, Request(endPoint));
        Assert.StartsWith("HTTP/1.1 503 ", refused);
        Assert.Contains("too many pending handshakes", refused);
        foreach (var client in silent)
            await client.DisposeAsync();
        await Task.Delay(200);
        await using (await RawClient.UpgradeAsync(endPoint)) { } // room again
    }

    // One address holds `silent` sockets in their handshake (sending nothing) on a server with
    // `maxPending` handshake slots and a per-address cap of 5; its next upgrade's answer.
    private static async Task<string> NextUpgradeFromABusyAddressAsync(int maxPending, int silent)
    {
        var options = new WebSocketServerOptions { MaxPendingHandshakes = maxPending, MaxPendingHandshakesPerAddress = 5 };
        await using var server = await Loopback.StartEchoServerAsync(options);
        var endPoint = server.LocalEndPoint!;
        var busy = IPAddress.Parse("127.0.0.2");
        var held = new List<RawClient>();
        for (int i = 0; i < silent; i++)
            held.Add(await RawClient.ConnectAsync(endPoint, busy));
        await Task.Delay(200);
        string answer;
        await using (var next = await RawClient.ConnectAsync(endPoint, busy))
        {
            await next.SendAsync(Request(endPoint));
            answer = await next.ReadHeadAsync();
            if (!answer.StartsWith("HTTP/1.1 101 ", StringComparison.Ordinal))
                answer += await next.ReadToEndAsync(); // a refusal's body says why
        }
        await using (await RawClient.UpgradeAsync(endPoint)) { } // 127.0.0.1 is never held back
        foreach (var client in held)
            await client.DisposeAsync();
        return answer;
    }

    [Fact]
    public async Task One_address_cannot_use_up_the_handshakes_of_everyone_else()
    {
        string refused = await NextUpgradeFromABusyAddressAsync(maxPending: 10, silent: 5);
        Assert.StartsWith("HTTP/1.1 503 ", refused);
        Assert.Contains("from your address", refused);
    }

    [Fact]
    public async Task One_address_may_use_the_handshake_room_nobody_else_needs()
    {
        // Behind a proxy every client has the proxy's address: a burst must not be cut at the
        // per-address cap while the server has room.
        Assert.StartsWith("HTTP/1.1 101 ", await NextUpgradeFromABusyAddressAsync(maxPending: 100, silent: 20));
    }

    // A server whose log lines are kept; returns the close line of the first connection that ends.
    private static async Task<string?> WaitForCloseLineAsync(System.Collections.Concurrent.ConcurrentQueue<string> log, TimeSpan within)
    {
        var until = DateTime.UtcNow + within;
        while (DateTime.UtcNow < until)
        {
            if (log.FirstOrDefault(l => l.StartsWith("close ", StringComparison.Ordinal)) is { } line)
                return line;
            await Task.Delay(20);
        }
        return null;
    }

    [Fact]
    public async Task A_peer_that_stops_reading_is_dropped_after_the_send_timeout()
    {
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var options = new WebSocketServerOptions { SendTimeout = TimeSpan.FromMilliseconds(300), Log = log.Enqueue };
        await using var server = await Loopback.StartEchoServerAsync(options, s =>
            s.Map("/flood", (ws, _, _) => ws.SendBinaryAsync(new byte[32 << 20]).AsTask()));
        await using var client = await RawClient.UpgradeAsync(server.LocalEndPoint!, "/flood"); // and never reads
        var started = DateTime.UtcNow;
        string? closed = await WaitForCloseLineAsync(log, TimeSpan.FromSeconds(10));
        Assert.NotNull(closed);
        Assert.Contains(" 1008 send timeout", closed);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        Assert.Equal(0, server.ConnectionCount);
    }

    [Fact]
    public async Task Sends_piling_up_past_the_pending_cap_drop_the_connection_with_1013()
    {
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var options = new WebSocketServerOptions { MaxPendingSendBytes = 4 << 20, Log = log.Enqueue };
        int refused = 0;
        await using var server = await Loopback.StartEchoServerAsync(options, s => s.Map("/spray", async (ws, _, _) =>
        {
            // Sends that do not wait for each other, to a peer that does not read.
            var sends = Enumerable.Range(0, 50).Select(_ => ws.SendBinaryAsync(new byte[1 << 20]).AsTask()).ToList();
            foreach (var send in sends)
            {
                try
                {
                    await send;
                }
                catch (WebSocketClosedException)
                {
                    Interlocked.Increment(ref refused);
                }
            }
        }));
        await using var client = await RawClient.UpgradeAsync(server.LocalEndPoint!, "/spray");
        string? closed = await WaitForCloseLineAsync(log, TimeSpan.FromSeconds(10));
        Assert.NotNull(closed);
        Assert.Contains(" 1013 too slow", closed);
        Assert.True(refused > 0, string.Join("\n", log));
    }

    [Fact]
    public async Task Post_gets_405()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        Assert.StartsWith("HTTP/1.1 405 ", await AskAsync(server, Request(server.LocalEndPoint!, method: "POST")));
    }

    [Fact]
    public async Task Missing_or_bad_key_gets_400()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        Assert.StartsWith("HTTP/1.1 400 ", await AskAsync(server, Request(server.LocalEndPoint!, key: false)));
        Assert.StartsWith("HTTP/1.1 400 ", await AskAsync(server, Request(server.LocalEndPoint!, key: false, headers: "Sec-WebSocket-Key: short\r\n")));
    }

    [Fact]
    public async Task Wrong_version_gets_426_with_the_supported_version()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        string response = await AskAsync(server, Request(server.LocalEndPoint!).Replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12"));
        Assert.StartsWith("HTTP/1.1 426 ", response);
        Assert.Contains("Sec-WebSocket-Version: 13\r\n", response);
    }

    [Fact]
    public async Task Unknown_path_gets_404_and_junk_gets_400()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        Assert.StartsWith("HTTP/1.1 404 ", await AskAsync(server, Request(server.LocalEndPoint!, path: "/nowhere")));
        Assert.StartsWith("HTTP/1.1 400 ", await AskAsync(server, "\u0001\u0002 junk junk\r\n\r\n"));
    }

    [Fact]
    public async Task Oversized_head_gets_431()
    {
        var options = new WebSocketServerOptions { HeadLimits = new HttpHeadLimits { MaxHeadBytes = 1024 } };
        await using var server = await Loopback.StartEchoServerAsync(options);
        string response = await AskAsync(server, Request(server.LocalEndPoint!, headers: $"X-Big: {new string('a', 2000)}\r\n"));
        Assert.StartsWith("HTTP/1.1 431 ", response);
    }

    [Fact]
    public async Task Without_an_allow_list_only_pages_from_the_same_host_get_in()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var endPoint = server.LocalEndPoint!;
        string host = $"127.0.0.1:{endPoint.Port}";
        Assert.StartsWith("HTTP/1.1 403 ", await AskAsync(server, Request(endPoint, headers: "Origin: https://evil.example\r\n")));
        Assert.StartsWith("HTTP/1.1 403 ", await AskAsync(server, Request(endPoint, headers: "Origin: null\r\n")));
        Assert.StartsWith("HTTP/1.1 403 ", await AskAsync(server, Request(endPoint, headers: $"Origin: http://127.0.0.1:{endPoint.Port + 1}\r\n")));
        await using (await RawClient.UpgradeAsync(endPoint, extraHeaders: $"Origin: http://{host}\r\n")) { }
        await using (await RawClient.UpgradeAsync(endPoint)) { } // no Origin: not a browser
    }

    [Fact]
    public async Task An_allow_list_of_star_lets_every_origin_in()
    {
        var options = new WebSocketServerOptions();
        options.AllowedOrigins.Add("*");
        await using var server = await Loopback.StartEchoServerAsync(options);
        await using (await RawClient.UpgradeAsync(server.LocalEndPoint!, extraHeaders: "Origin: https://anywhere.example\r\n")) { }
    }

    [Fact]
    public async Task Origin_allow_list_refuses_other_sites_with_403()
    {
        var options = new WebSocketServerOptions();
        options.AllowedOrigins.Add("https://good.example");
        await using var server = await Loopback.StartEchoServerAsync(options);
        var endPoint = server.LocalEndPoint!;
        Assert.StartsWith("HTTP/1.1 403 ", await AskAsync(server, Request(endPoint, headers: "Origin: https://evil.example\r\n")));
        await using (await RawClient.UpgradeAsync(endPoint, extraHeaders: "Origin: https://GOOD.example\r\n")) { }
        await using (await RawClient.UpgradeAsync(endPoint)) { } // no Origin: not a browser
    }

    [Fact]
    public async Task Subprotocol_is_chosen_from_the_offers_in_the_clients_order()
    {
        var route = new WebSocketRouteOptions();
        route.SubProtocols.Add("v2");
        route.SubProtocols.Add("v1");
        await using var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/p", Echo.Handler, route));
        var options = new WebSocketClientOptions();
        options.SubProtocols.Add("v1");
        options.SubProtocols.Add("v2");
        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/p"), options))
            Assert.Equal("v1", ws.SubProtocol);
        var other = new WebSocketClientOptions();
        other.SubProtocols.Add("v9");
        await using (var ws = await WebSocketClient.ConnectAsync(server.Url("/p"), other))
            Assert.Null(ws.SubProtocol);
    }

    [Fact]
    public async Task Authorize_hook_can_refuse_the_upgrade()
    {
        var route = new WebSocketRouteOptions
        {
            Authorize = context => ValueTask.FromResult(context.GetQueryParameter("token") == "secret"
                ? null
                : new HttpRejection(401, "bad token")),
        };
        await using var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/private", Echo.Handler, route));
        var refused = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(server.Url("/private?token=x")));
        Assert.Equal(401, refused.StatusCode);
        await using var ws = await WebSocketClient.ConnectAsync(server.Url("/private?token=secret"));
        Assert.Equal(ConnectionState.Open, ws.State);
    }

    [Fact]
    public async Task Connections_over_the_limit_get_503()
    {
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { MaxConnections = 1 });
        await using var first = await WebSocketClient.ConnectAsync(server.Url());
        var refused = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(server.Url()));
        Assert.Equal(503, refused.StatusCode);
    }

    [Fact]
    public async Task A_client_that_sends_no_request_is_dropped_after_the_handshake_timeout()
    {
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(300) });
        await using var client = await RawClient.ConnectAsync(server.LocalEndPoint!);
        Assert.True(await client.WaitForEndAsync(Wait));
    }

    [Fact]
    public async Task Http_routes_answer_plain_requests()
    {
        await using var server = await Loopback.StartEchoServerAsync(configure: s =>
            s.MapHttp("/healthz", _ => ValueTask.FromResult(new HttpReply(200, "ok"))));
        string response = await AskAsync(server, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK", response);
        Assert.EndsWith("\r\n\r\nok", response);
    }

    [Fact]
    public async Task Unmasked_client_frame_is_closed_with_1002_and_the_server_ends_tcp()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        await using var client = await RawClient.UpgradeAsync(server.LocalEndPoint!);
        await client.SendAsync(Frames.Build(Opcode.Text, "not masked"u8));
        var close = await client.ReadCloseAsync();
        Assert.Equal(1002, close!.CloseCode);
        Assert.False(close.Masked);
        Assert.True(await client.WaitForEndAsync(Wait));
    }

    [Fact]
    public async Task Frames_after_the_close_are_ignored()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        await using var client = await RawClient.UpgradeAsync(server.LocalEndPoint!);
        await client.SendAsync(Frames.Concat(
            Frames.Client(Opcode.Close, Frames.ClosePayload(1000)),
            Frames.ClientText("ignored"),
            Frames.Client(Opcode.Ping, "ignored"u8)));
        var frame = await client.ReadFrameAsync();
        Assert.Equal(Opcode.Close, frame!.Opcode);
        Assert.Equal(1000, frame.CloseCode);
        Assert.True(await client.WaitForEndAsync(Wait));
    }

    [Fact]
    public async Task Handler_exception_closes_with_1011()
    {
        await using var server = await Loopback.StartEchoServerAsync(configure: s =>
            s.Map("/boom", (_, _, _) => throw new InvalidOperationException("boom")));
        await using var ws = await WebSocketClient.ConnectAsync(server.Url("/boom"));
        var closed = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(CloseStatus.InternalServerError, closed.CloseStatus);
    }

    [Fact]
    public async Task Graceful_shutdown_closes_every_client_with_1001_then_stops_listening()
    {
        var server = await Loopback.StartEchoServerAsync();
        var clients = new List<WebSocketConnection>();
        for (int i = 0; i < 5; i++)
            clients.Add(await WebSocketClient.ConnectAsync(server.Url()));
        var receives = clients.Select(c => c.ReceiveAsync().AsTask()).ToList();
        var endPoint = server.LocalEndPoint!;
        await server.StopAsync().WaitAsync(Wait);
        foreach (var receive in receives)
        {
            var closed = await receive.WaitAsync(Wait);
            Assert.Equal(CloseStatus.GoingAway, closed.CloseStatus);
        }
        Assert.Equal(0, server.ConnectionCount);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Assert.ThrowsAsync<SocketException>(() => socket.ConnectAsync(endPoint));
        foreach (var client in clients)
            await client.DisposeAsync();
        await server.DisposeAsync();
    }

    [Fact]
    public async Task Upgrade_request_and_first_frame_in_one_packet()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        await using var client = await RawClient.ConnectAsync(server.LocalEndPoint!);
        var bytes = Frames.Concat(System.Text.Encoding.Latin1.GetBytes(Request(server.LocalEndPoint!)), Frames.ClientText("together"));
        await client.SendAsync(bytes);
        Assert.StartsWith("HTTP/1.1 101", await client.ReadHeadAsync());
        var echo = await client.ReadFrameAsync();
        Assert.Equal("together", echo!.Text);
    }
}

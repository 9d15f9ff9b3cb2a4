using System.Net;
using Duplex.Cli;
using Duplex.Protocol;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Conformance.Tests;

public sealed class EchoServerFixture : IAsyncLifetime
{
    public WebSocketServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await Loopback.StartEchoServerAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>An echo server that accepts permessage-deflate as offered (both contexts kept, full windows allowed).</summary>
public sealed class CompressedEchoServerFixture : IAsyncLifetime
{
    public WebSocketServer Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { Compression = new PerMessageDeflateOptions { Threshold = 0 } });

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

public sealed class FuzzingServerFixture : IAsyncDisposable
{
    public FuzzingServer Server { get; } = new(CaseBook.All);

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}

/// <summary>Every case played at the Duplex server's echo endpoint by a raw fuzzing client.</summary>
public class ServerRole(EchoServerFixture plain, CompressedEchoServerFixture compressed)
    : IClassFixture<EchoServerFixture>, IClassFixture<CompressedEchoServerFixture>
{
    public static TheoryData<string> Cases => new(CaseBook.All.Select(c => c.ToString()));

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case(string name)
    {
        var conformanceCase = CaseBook.All.First(c => c.ToString() == name);
        if (conformanceCase.Extensions is not { } offer)
        {
            await using var client = await RawClient.UpgradeAsync(plain.Server.LocalEndPoint!);
            await conformanceCase.Run(new Fuzzer(client.Stream, client.Socket, isClient: true)).WaitAsync(TimeSpan.FromMinutes(2));
            return;
        }
        await using var compressing = await RawClient.UpgradeAsync(compressed.Server.LocalEndPoint!, "/echo", $"Sec-WebSocket-Extensions: {offer}\r\n");
        var fuzzer = new Fuzzer(compressing.Stream, compressing.Socket, isClient: true);
        fuzzer.UseCompression(Agreed(compressing.ResponseHeader("Sec-WebSocket-Extensions")
            ?? throw new ConformanceException($"the server declined '{offer}'")));
        await conformanceCase.Run(fuzzer).WaitAsync(TimeSpan.FromMinutes(2));
    }

    // What the server's answer means, read as a permissive client would.
    internal static Protocol.Deflate.DeflateParameters Agreed(string header)
    {
        Assert.True(Protocol.Handshake.TryParseExtensions(header.Split(','), out var answers));
        Assert.True(Protocol.Deflate.DeflateNegotiation.TryReadResponse(answers.Single(), new PerMessageDeflateOptions().Limits, out var agreed, out var error), error);
        return agreed!;
    }
}

/// <summary>
/// Every case played at the Duplex client by a raw fuzzing server, through the Autobahn driver
/// protocol: the client connects to /runCase?case=N and echoes until the close.
/// </summary>
public class ClientRole(FuzzingServerFixture fixture) : IClassFixture<FuzzingServerFixture>
{
    public static TheoryData<string> Cases => new(CaseBook.All.Select(c => c.ToString()));

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case(string name)
    {
        int number = CaseBook.All.Select((c, i) => (c, i)).First(x => x.c.ToString() == name).i + 1;
        var server = fixture.Server;
        var options = new WebSocketClientOptions { Compression = new PerMessageDeflateOptions { Threshold = 0 } };
        await using var ws = await WebSocketClient.ConnectAsync(new Uri(server.BaseUri, $"/runCase?case={number}&agent=duplex"), options);
        var echo = Echo.RunAsync(ws);
        string? failure = await server.WaitForResultAsync(number, TimeSpan.FromMinutes(2));
        Assert.True(failure is null, failure);
        var closed = await echo.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(closed.IsClose);
    }
}

/// <summary>The opening handshake rules, in both roles.</summary>
public class Handshake(EchoServerFixture fixture) : IClassFixture<EchoServerFixture>
{
    private IPEndPoint EndPoint => fixture.Server.LocalEndPoint!;

    private async Task<string> AskAsync(string request)
    {
        await using var client = await RawClient.ConnectAsync(EndPoint);
        await client.SendAsync(request);
        return await client.ReadToEndAsync();
    }

    private string Request(string? version = "13", string? key = "auto", string method = "GET", string? extra = null) =>
        $"{method} /echo HTTP/1.1\r\nHost: {EndPoint}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        (key is null ? "" : $"Sec-WebSocket-Key: {(key == "auto" ? Protocol.Handshake.CreateKey() : key)}\r\n") +
        (version is null ? "" : $"Sec-WebSocket-Version: {version}\r\n") + extra + "\r\n";

    [Theory]
    [InlineData("8")]
    [InlineData("14")]
    [InlineData("13, 8")]
    [InlineData(null)]
    public async Task Wrong_or_missing_version_gets_426_with_version_13(string? version)
    {
        string response = await AskAsync(Request(version: version));
        Assert.StartsWith("HTTP/1.1 426 ", response);
        Assert.Contains("\r\nSec-WebSocket-Version: 13\r\n", response);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("dGhlIHNhbXBsZQ==")]
    [InlineData("!!!!!!!!!!!!!!!!!!!!!!!=")]
    public async Task Missing_or_bad_key_gets_400(string? key)
    {
        Assert.StartsWith("HTTP/1.1 400 ", await AskAsync(Request(key: key)));
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("PUT")]
    [InlineData("HEAD")]
    public async Task Other_methods_get_405(string method)
    {
        Assert.StartsWith("HTTP/1.1 405 ", await AskAsync(Request(method: method)));
    }

    [Fact]
    public async Task Server_picks_an_offered_subprotocol_and_never_one_not_offered()
    {
        var route = new WebSocketRouteOptions();
        route.SubProtocols.Add("b");
        await using var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/p", Echo.Handler, route));
        await using (var offered = await RawClient.ConnectAsync(server.LocalEndPoint!))
        {
            await offered.SendAsync(RawClient.UpgradeRequest(server.LocalEndPoint!, "/p", Protocol.Handshake.CreateKey(), "Sec-WebSocket-Protocol: a, b\r\n"));
            Assert.Contains("\r\nSec-WebSocket-Protocol: b\r\n", await offered.ReadHeadAsync());
        }
        await using var other = await RawClient.ConnectAsync(server.LocalEndPoint!);
        await other.SendAsync(RawClient.UpgradeRequest(server.LocalEndPoint!, "/p", Protocol.Handshake.CreateKey(), "Sec-WebSocket-Protocol: c\r\n"));
        string head = await other.ReadHeadAsync();
        Assert.StartsWith("HTTP/1.1 101", head);
        Assert.DoesNotContain("Sec-WebSocket-Protocol", head);
    }

    [Fact]
    public async Task Unmasked_client_frame_fails_with_1002()
    {
        await using var client = await RawClient.UpgradeAsync(EndPoint);
        var fuzzer = new Fuzzer(client.Stream, client.Socket, isClient: true);
        await fuzzer.SendRawAsync(Frames.Build(Opcode.Text, "unmasked"u8));
        await fuzzer.ExpectCloseAsync(1002);
    }

    [Theory]
    [InlineData("wrong accept")]
    [InlineData("no upgrade header")]
    [InlineData("not offered subprotocol")]
    [InlineData("status 200")]
    public async Task Client_refuses_a_bad_server_answer(string flaw)
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var serve = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync();
            await using var stream = new System.Net.Sockets.NetworkStream(socket);
            var buffer = new byte[4096];
            int n = await stream.ReadAsync(buffer);
            string request = System.Text.Encoding.Latin1.GetString(buffer, 0, n);
            string key = request.Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:")).Split(':', 2)[1].Trim();
            string accept = flaw == "wrong accept" ? Protocol.Handshake.ComputeAccept(Protocol.Handshake.CreateKey()) : Protocol.Handshake.ComputeAccept(key);
            string response = (flaw == "status 200" ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 101 Switching Protocols\r\n") +
                (flaw == "no upgrade header" ? "" : "Upgrade: websocket\r\n") + "Connection: Upgrade\r\n" +
                $"Sec-WebSocket-Accept: {accept}\r\n" + (flaw == "not offered subprotocol" ? "Sec-WebSocket-Protocol: x\r\n" : "") + "\r\n";
            await stream.WriteAsync(System.Text.Encoding.Latin1.GetBytes(response));
            await Task.Delay(200);
        });
        var uri = new Uri($"ws://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/");
        await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(uri));
        await serve;
    }
}

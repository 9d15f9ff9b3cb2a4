using System.Net;
using System.Net.Sockets;
using Duplex.Cli;
using Duplex.Protocol;
using Duplex.Server;

namespace Duplex.Testing;

/// <summary>Real loopback sockets and servers for tests, on ports the OS picks.</summary>
public static class Loopback
{
    /// <summary>Two connected TCP streams on 127.0.0.1.</summary>
    public static async Task<(NetworkStream Client, NetworkStream Server)> CreatePairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        var server = await accept;
        server.NoDelay = true;
        return (new NetworkStream(client, ownsSocket: true), new NetworkStream(server, ownsSocket: true));
    }

    /// <summary>A Duplex client and server connection joined by loopback TCP (no handshake).</summary>
    public static async Task<(WebSocketConnection Client, WebSocketConnection Server)> CreateConnectionPairAsync(
        WebSocketOptions? clientOptions = null, WebSocketOptions? serverOptions = null)
    {
        var (client, server) = await CreatePairAsync();
        return (WebSocketConnection.Create(client, Role.Client, clientOptions),
                WebSocketConnection.Create(server, Role.Server, serverOptions));
    }

    /// <summary>A started Duplex server with an echo endpoint at /echo.</summary>
    public static async Task<WebSocketServer> StartEchoServerAsync(WebSocketServerOptions? options = null,
        Action<WebSocketServer>? configure = null)
    {
        var server = new WebSocketServer(options);
        server.Map("/echo", Echo.Handler);
        configure?.Invoke(server);
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        return server;
    }

    public static Uri Url(this WebSocketServer server, string path = "/echo", string scheme = "ws") =>
        new($"{scheme}://127.0.0.1:{server.LocalEndPoint!.Port}{path}");
}

/// <summary>
/// A client and server connection joined by loopback TCP. Disposing closes from the client
/// while the server side reads, as a real application would, so no test waits for a close timeout.
/// </summary>
public sealed class ConnectionPair : IAsyncDisposable
{
    private ConnectionPair(WebSocketConnection client, WebSocketConnection server)
    {
        Client = client;
        Server = server;
    }

    public WebSocketConnection Client { get; }

    public WebSocketConnection Server { get; }

    public static async Task<ConnectionPair> CreateAsync(WebSocketOptions? clientOptions = null, WebSocketOptions? serverOptions = null)
    {
        var (client, server) = await Loopback.CreateConnectionPairAsync(clientOptions, serverOptions);
        return new ConnectionPair(client, server);
    }

    public async ValueTask DisposeAsync()
    {
        var drain = Task.Run(async () =>
        {
            while (!(await Server.ReceiveAsync()).IsClose)
            {
            }
        });
        await Client.DisposeAsync();
        await drain.WaitAsync(TimeSpan.FromSeconds(10));
        await Server.DisposeAsync();
    }
}

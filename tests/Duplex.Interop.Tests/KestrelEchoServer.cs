using System.Net.WebSockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Duplex.Interop.Tests;

/// <summary>ASP.NET Core's own WebSocket server (Kestrel + UseWebSockets) with an echo and a closing endpoint.</summary>
public sealed class KestrelEchoServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private KestrelEchoServer(WebApplication app, Uri baseUri)
    {
        _app = app;
        BaseUri = baseUri;
    }

    public Uri BaseUri { get; }

    public Uri Url(string path) => new(BaseUri, path);

    public static async Task<KestrelEchoServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.UseWebSockets();
        app.Map("/echo", async context =>
        {
            using var ws = await context.WebSockets.AcceptWebSocketAsync();
            await EchoAsync(ws);
        });
        app.Map("/fragments", async context =>
        {
            using var ws = await context.WebSockets.AcceptWebSocketAsync();
            await ws.SendAsync("sent "u8.ToArray(), WebSocketMessageType.Text, false, CancellationToken.None);
            await ws.SendAsync("in "u8.ToArray(), WebSocketMessageType.Text, false, CancellationToken.None);
            await ws.SendAsync("pieces"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
            await EchoAsync(ws);
        });
        app.Map("/keepalive", async context =>
        {
            // Kestrel pings every 100 ms and drops a client that does not answer within 1.5 s
            // (generous: the suite runs test classes in parallel on two cores).
            using var ws = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
            {
                KeepAliveInterval = TimeSpan.FromMilliseconds(100),
                KeepAliveTimeout = TimeSpan.FromMilliseconds(1500),
            });
            await EchoAsync(ws);
        });
        app.Map("/compressed", async context =>
        {
            using var ws = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { DangerousEnableCompression = true });
            await EchoAsync(ws);
        });
        app.Map("/close4001", async context =>
        {
            using var ws = await context.WebSockets.AcceptWebSocketAsync();
            await ws.CloseAsync((WebSocketCloseStatus)4001, "kestrel says bye", CancellationToken.None);
        });
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new KestrelEchoServer(app, new Uri(address.Replace("http://", "ws://")));
    }

    // Echo whole messages with their type, as ManagedWebSocket hands them over in pieces.
    private static async Task EchoAsync(WebSocket ws)
    {
        var buffer = new byte[17 * 1024 * 1024];
        while (true)
        {
            int filled = 0;
            WebSocketReceiveResult result;
            do
            {
                result = await ws.ReceiveAsync(buffer.AsMemory(filled), CancellationToken.None) is var r
                    ? new WebSocketReceiveResult(r.Count, r.MessageType, r.EndOfMessage, ws.CloseStatus, ws.CloseStatusDescription)
                    : throw new InvalidOperationException();
                filled += result.Count;
            }
            while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                await ws.CloseOutputAsync(ws.CloseStatus ?? WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                return;
            }
            await ws.SendAsync(buffer.AsMemory(0, filled), result.MessageType, true, CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

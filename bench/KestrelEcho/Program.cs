// A minimal Kestrel WebSocket echo server: the baseline that `bench/compare.sh` measures Duplex against.
//   dotnet KestrelEcho.dll --port 8081
using System.Net.WebSockets;

int port = args.Length == 2 && args[0] == "--port" ? int.Parse(args[1]) : 8081;
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
var app = builder.Build();
app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
app.Map("/echo", async context =>
{
    if (!context.WebSockets.IsWebSocketRequest)
    {
        context.Response.StatusCode = 426;
        return;
    }
    // permessage-deflate when the client offers it (the browser default), as ASP.NET Core allows.
    using var ws = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { DangerousEnableCompression = true });
    var buffer = new byte[128 * 1024];
    while (true)
    {
        // Assemble a whole message (as Duplex hands over whole messages), then echo it.
        int filled = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            if (filled == buffer.Length)
                Array.Resize(ref buffer, buffer.Length * 2);
            result = await ws.ReceiveAsync(buffer.AsMemory(filled), CancellationToken.None);
            filled += result.Count;
        }
        while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);
        if (result.MessageType == WebSocketMessageType.Close)
        {
            await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
            return;
        }
        await ws.SendAsync(buffer.AsMemory(0, filled), result.MessageType, true, CancellationToken.None);
    }
});
Console.WriteLine($"kestrel echo on ws://127.0.0.1:{port}/echo");
app.Run();

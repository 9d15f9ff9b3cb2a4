// A minimal Kestrel WebSocket echo server: the baseline that `bench/compare.sh` measures Duplex against.
//   dotnet KestrelEcho.dll --port 8081             ASP.NET Core's built-in WebSockets (UseWebSockets)
//   dotnet KestrelEcho.dll --port 8081 --duplex    the same Kestrel app with Duplex.AspNetCore's MapDuplex
using System.Net.WebSockets;
using Duplex;
using Duplex.AspNetCore;

int port = 8081;
bool duplex = false;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--port" && i + 1 < args.Length)
        port = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--duplex")
        duplex = true;
    else
    {
        Console.Error.WriteLine("usage: KestrelEcho [--port N] [--duplex]");
        return 64;
    }
}
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
if (duplex)
{
    // The same settings as the baseline below: no keep-alive pings, permessage-deflate when offered.
    builder.Services.AddDuplex(o =>
    {
        o.KeepAliveInterval = TimeSpan.Zero;
        o.Compression = PerMessageDeflateOptions.ForServer();
    });
}
var app = builder.Build();
if (duplex)
{
    app.MapDuplex("/echo", async (WebSocketConnection connection, HttpContext _) =>
    {
        await foreach (var message in connection.ReadAllAsync())
            await connection.SendAsync(message.Payload, message.Type);
    });
}
else
{
    app.UseWebSockets(new Microsoft.AspNetCore.Builder.WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
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
}
Console.WriteLine($"kestrel echo ({(duplex ? "Duplex" : "UseWebSockets")}) on ws://127.0.0.1:{port}/echo");
app.Run();
return 0;

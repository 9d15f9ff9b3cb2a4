using Duplex;
using Duplex.AspNetCore;

var builder = WebApplication.CreateBuilder(args);

// Settings come from the "Duplex" section of appsettings.json, then from this delegate.
builder.Services.AddDuplex(options =>
{
    options.MaxMessageSize = 1024 * 1024;
    options.Compression = PerMessageDeflateOptions.ForServer();
});
builder.Services.AddDuplexHub(); // the pub/sub hub: channels, presence, history, recovery

var app = builder.Build();

// An echo: each message goes back as it came. Parameters are filled in by type
// (the connection, HttpContext, ClaimsPrincipal, CancellationToken, or any service).
app.MapDuplex("/echo", async (WebSocketConnection ws, ILogger<Program> log) =>
{
    log.LogInformation("echo connection opened ({Protocol})", ws.SubProtocol ?? "no subprotocol");
    await foreach (var message in ws.ReadAllAsync())
        await ws.SendAsync(message.Payload, message.Type);
});

// The hub, for browsers (duplex-hub.js) and HubClient. Add .RequireAuthorization() to let
// only signed-in users in: their claims then say which channels they may join.
app.MapDuplexHub("/hub");

app.MapGet("/", () => "Duplex on ASP.NET Core: ws://<this host>/echo and ws://<this host>/hub");

app.Run();

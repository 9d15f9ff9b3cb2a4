using System.Collections.Concurrent;
using System.Net;
using Duplex;
using Duplex.Protocol;
using Duplex.Server;

// ---- The server: an echo, and a room where every message goes to every member. ----
await using var server = new WebSocketServer(new WebSocketServerOptions { MaxMessageSize = 64 * 1024 });

server.Map("/echo", async (ws, request, stopping) =>
{
    await foreach (var message in ws.ReadAllAsync(stopping))
        await ws.SendAsync(message.Payload, message.Type, stopping); // the payload is lent: send it before the next read
});

var members = new ConcurrentDictionary<WebSocketConnection, string>();
server.Map("/room", async (ws, request, stopping) =>
{
    string name = request.GetQueryParameter("name") ?? "someone";
    members[ws] = name;
    try
    {
        await foreach (var message in ws.ReadAllAsync(stopping))
        {
            // Framed once, however many members: each send copies the same frame bytes.
            var prepared = PreparedMessage.CreateText($"{name}: {message.GetText()}");
            foreach (var member in members.Keys)
            {
                try
                {
                    await member.SendAsync(prepared, stopping);
                }
                catch (WebSocketClosedException)
                {
                    // that member is leaving; its own handler removes it
                }
            }
        }
    }
    finally
    {
        members.TryRemove(ws, out _);
    }
});

// Port 0 picks a free port; a real server names its own (8080, say).
await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
var baseUrl = $"ws://127.0.0.1:{server.LocalEndPoint!.Port}";
Console.WriteLine($"listening on {baseUrl}");

// ---- A client. ----
await using (var ws = await WebSocketClient.ConnectAsync(new Uri($"{baseUrl}/echo")))
{
    await ws.SendTextAsync("hello");
    var reply = await ws.ReceiveAsync();
    Console.WriteLine($"echo: {reply.GetText()}");

    await ws.SendBinaryAsync(new byte[] { 1, 2, 3 });
    reply = await ws.ReceiveAsync();
    Console.WriteLine($"echo: {reply.Payload.Length} bytes");

    await ws.CloseAsync(CloseStatus.NormalClosure, "done");
    Console.WriteLine($"closed: {(int)ws.CloseStatus!}");
}

// ---- Three members of the room: one speaks, all three hear it. ----
var room = new List<WebSocketConnection>();
foreach (var name in new[] { "ada", "grace", "alan" })
    room.Add(await WebSocketClient.ConnectAsync(new Uri($"{baseUrl}/room?name={name}")));
while (members.Count < room.Count)
    await Task.Delay(10); // until the server has seen all three join

await room[0].SendTextAsync("hi all");
foreach (var member in room)
{
    var heard = await member.ReceiveAsync();
    Console.WriteLine($"heard: {heard.GetText()}");
    await member.DisposeAsync(); // closes with 1000
}

await server.StopAsync(); // any client still connected gets 1001

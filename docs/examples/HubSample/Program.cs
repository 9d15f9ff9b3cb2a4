using System.Net;
using System.Text.Json.Serialization;
using Duplex;
using Duplex.Hub;
using Duplex.Server;

// ---- The server: the hub on /hub, with HS256 tokens, and its metrics on /metrics. ----
const string Secret = "use at least 32 random bytes here, from your secret store";
var hub = new MessageHub(new HubOptions
{
    HistorySize = 100,                            // messages kept per channel for history and recovery
    Authenticate = JwtAuthenticator.Create(Secret), // "Authorization: Bearer ..." or ?access_token=...; no token: 401
});
await using var server = new WebSocketServer(new WebSocketServerOptions());
server.Map("/hub", hub.HandleAsync, hub.RouteOptions);
server.MapHttp("/metrics", _ => ValueTask.FromResult(new HttpReply(200, hub.FormatMetrics(server))));
await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
var hubUrl = $"ws://127.0.0.1:{server.LocalEndPoint!.Port}/hub";

// ---- Clients: a token says which channels its holder may join and publish to. ----
Uri WithToken(string user) =>
    new($"{hubUrl}?access_token={JwtAuthenticator.Issue(Secret, user, channels: ["lobby"], publish: ["lobby"])}");

await using var ada = await HubClient.ConnectAsync(WithToken("ada"));
await using var grace = await HubClient.ConnectAsync(WithToken("grace"));
grace.PresenceChanged += p => Console.WriteLine($"presence: {p.Info?.GetProperty("name")} {(p.Joined ? "joined" : "left")} {p.Channel}");

await grace.JoinAsync("lobby", new { name = "grace" });
await ada.JoinAsync("lobby", new { name = "ada" });

// An acknowledged publish: the answer is the message's offset in the channel.
long offset = await ada.PublishAsync("lobby", new Chat("hello"), AppJson.Default.Chat);
Console.WriteLine($"published at offset {offset}");

using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
await foreach (var message in grace.ReadAllAsync(timeout.Token))
{
    Console.WriteLine($"grace got #{message.Offset} from client {message.From}: {message.GetData(AppJson.Default.Chat)?.Text}");
    break;
}

var members = await grace.PresenceAsync("lobby");
Console.WriteLine($"members: {members.Count}");
var history = await grace.HistoryAsync("lobby", limit: 50); // oldest first
Console.WriteLine($"history: {history.Messages.Count} message(s)");

try
{
    await ada.PublishAsync("admin", new Chat("let me in"), AppJson.Default.Chat);
}
catch (HubException refused)
{
    Console.WriteLine($"refused: {refused.Code}"); // the token does not name "admin"
}

record Chat(string Text);

[JsonSerializable(typeof(Chat))]
partial class AppJson : JsonSerializerContext;

using System.Text;
using System.Text.Json;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Hub.Tests;

/// <summary>A server with a hub at /hub, and raw JSON clients to talk to it.</summary>
public static class HubServer
{
    public static async Task<(WebSocketServer Server, MessageHub Hub)> StartAsync(HubOptions? options = null)
    {
        var hub = new MessageHub(options);
        var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/hub", hub.HandleAsync, hub.RouteOptions));
        return (server, hub);
    }
}

/// <summary>A hub client at the JSON level: sends requests, reads events in order.</summary>
public sealed class JsonClient : IAsyncDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private int _nextId;

    private JsonClient(WebSocketConnection ws, string clientId)
    {
        Connection = ws;
        ClientId = clientId;
    }

    public WebSocketConnection Connection { get; }

    public string ClientId { get; }

    public static async Task<JsonClient> ConnectAsync(WebSocketServer server, string query = "", WebSocketClientOptions? options = null)
    {
        var ws = await WebSocketClient.ConnectAsync(server.Url("/hub" + query), options);
        var welcome = await ReadAsync(ws);
        Assert.Equal("welcome", welcome.GetProperty("type").GetString());
        return new JsonClient(ws, welcome.GetProperty("client").GetString()!);
    }

    private static async Task<JsonElement> ReadAsync(WebSocketConnection ws)
    {
        var message = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        if (message.IsClose)
            throw new InvalidOperationException($"closed: {(int)message.CloseStatus} {message.CloseReason}");
        return JsonDocument.Parse(message.GetText()).RootElement.Clone();
    }

    public Task<JsonElement> NextAsync() => ReadAsync(Connection);

    /// <summary>Reads until an event of this type arrives (skipping others).</summary>
    public async Task<JsonElement> NextAsync(string type)
    {
        while (true)
        {
            var e = await NextAsync();
            if (e.GetProperty("type").GetString() == type)
                return e;
        }
    }

    public async Task<string> SendAsync(object request)
    {
        string id = (++_nextId).ToString();
        var json = JsonSerializer.SerializeToElement(request);
        var withId = new Dictionary<string, JsonElement>(json.EnumerateObject().Select(p => KeyValuePair.Create(p.Name, p.Value))) { ["id"] = JsonSerializer.SerializeToElement(id) };
        await Connection.SendTextAsync(JsonSerializer.Serialize(withId));
        return id;
    }

    public Task SendRawAsync(string text) => Connection.SendTextAsync(text).AsTask();

    /// <summary>Sends a request and reads until its answer (ok or error), returning it.</summary>
    public async Task<JsonElement> AskAsync(object request)
    {
        string id = await SendAsync(request);
        while (true)
        {
            var e = await NextAsync();
            if (e.TryGetProperty("id", out var got) && got.GetString() == id)
                return e;
        }
    }

    public ValueTask DisposeAsync() => Connection.DisposeAsync();
}

using System.Text.Json;
using Duplex.Protocol;

namespace Duplex.Hub.Tests;

public class HubTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Fan_out_reaches_every_subscriber_in_order_and_publishes_are_acknowledged()
    {
        var (server, _) = await HubServer.StartAsync();
        await using var _s = server;
        var subscribers = new List<JsonClient>();
        for (int i = 0; i < 20; i++)
        {
            var c = await JsonClient.ConnectAsync(server);
            Assert.Equal("ok", (await c.AskAsync(new { type = "join", channel = "room" })).GetProperty("type").GetString());
            subscribers.Add(c);
        }
        await using var publisher = await JsonClient.ConnectAsync(server);
        await publisher.AskAsync(new { type = "join", channel = "room" });
        for (int i = 1; i <= 50; i++)
        {
            var ack = await publisher.AskAsync(new { type = "publish", channel = "room", data = new { n = i } });
            Assert.Equal("ok", ack.GetProperty("type").GetString());
            Assert.Equal(i, ack.GetProperty("offset").GetInt64());
        }
        foreach (var s in subscribers)
        {
            for (int i = 1; i <= 50; i++)
            {
                var m = await s.NextAsync("message");
                Assert.Equal(i, m.GetProperty("offset").GetInt64());
                Assert.Equal(i, m.GetProperty("data").GetProperty("n").GetInt32());
                Assert.Equal(publisher.ClientId, m.GetProperty("from").GetString());
                Assert.Equal("room", m.GetProperty("channel").GetString());
            }
            await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task Answers_carry_the_requests_id_exactly_as_sent()
    {
        var (server, _) = await HubServer.StartAsync();
        await using var _s = server;
        await using var c = await JsonClient.ConnectAsync(server);
        await c.SendRawAsync("{\"type\":\"ping\",\"id\":7}");
        var number = await c.NextAsync("ok");
        Assert.Equal(JsonValueKind.Number, number.GetProperty("id").ValueKind);
        Assert.Equal(7, number.GetProperty("id").GetInt32());
        await c.SendRawAsync("{\"type\":\"ping\",\"id\":\"a\\\"b\"}");
        Assert.Equal("a\"b", (await c.NextAsync("ok")).GetProperty("id").GetString());
        await c.SendRawAsync("{\"type\":\"join\",\"channel\":\"x y\",\"id\":1.5}");
        Assert.Equal(1.5, (await c.NextAsync("error")).GetProperty("id").GetDouble());
    }

    [Fact]
    public async Task Large_history_comes_in_pages_and_never_makes_the_asker_a_slow_consumer()
    {
        var (server, _) = await HubServer.StartAsync(new HubOptions { MaxQueuedBytes = 1 << 20, HistorySize = 100 });
        await using var _s = server;
        await using var publisher = await JsonClient.ConnectAsync(server);
        await publisher.AskAsync(new { type = "join", channel = "big" });
        string data = new('d', 30_000);
        for (int i = 0; i < 30; i++)
            await publisher.AskAsync(new { type = "publish", channel = "big", data });
        await using var reader = await JsonClient.ConnectAsync(server);
        var offsets = new List<long>();
        long? before = null;
        for (int page = 0; page < 30; page++)
        {
            var answer = before is null
                ? await reader.AskAsync(new { type = "history", channel = "big", limit = 100 })
                : await reader.AskAsync(new { type = "history", channel = "big", limit = 100, before });
            Assert.Equal("ok", answer.GetProperty("type").GetString());
            var messages = answer.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64()).ToList();
            Assert.InRange(messages.Count, 1, 9); // a quarter of 1 MiB holds at most 8 of 30 KB
            offsets.InsertRange(0, messages);
            if (!answer.TryGetProperty("more", out _))
                break;
            before = answer.GetProperty("before").GetInt64();
        }
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), offsets);
        Assert.Equal(ConnectionState.Open, reader.Connection.State); // not closed as a slow consumer
    }

    [Fact]
    public async Task A_channel_name_with_a_trailing_newline_is_refused()
    {
        var (server, _) = await HubServer.StartAsync();
        await using var _s = server;
        await using var c = await JsonClient.ConnectAsync(server);
        Assert.Equal("bad_channel", (await c.AskAsync(new { type = "join", channel = "lobby\n" })).GetProperty("code").GetString());
        Assert.Equal("ok", (await c.AskAsync(new { type = "join", channel = "lobby" })).GetProperty("type").GetString());
    }

    [Fact]
    public async Task Malformed_requests_get_errors_and_the_connection_stays_up_until_too_many()
    {
        var (server, _) = await HubServer.StartAsync();
        await using var _s = server;
        await using var c = await JsonClient.ConnectAsync(server);
        await c.SendRawAsync("not json");
        Assert.Equal("bad_request", (await c.NextAsync("error")).GetProperty("code").GetString());
        Assert.Equal("bad_channel", (await c.AskAsync(new { type = "join", channel = "no spaces" })).GetProperty("code").GetString());
        Assert.Equal("not_joined", (await c.AskAsync(new { type = "publish", channel = "x", data = 1 })).GetProperty("code").GetString());
        Assert.Equal("bad_request", (await c.AskAsync(new { type = "dance" })).GetProperty("code").GetString());
        Assert.Equal("ok", (await c.AskAsync(new { type = "ping" })).GetProperty("type").GetString());
        for (int i = 0; i < 10; i++)
            await c.SendRawAsync("[]");
        var closed = await ReceiveUntilCloseAsync(c.Connection);
        Assert.Equal(CloseStatus.PolicyViolation, closed.CloseStatus);
    }

    private static async Task<WebSocketMessage> ReceiveUntilCloseAsync(WebSocketConnection ws)
    {
        while (true)
        {
            var m = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
            if (m.IsClose)
                return m;
        }
    }

    [Fact]
    public async Task Oversized_requests_and_too_many_channels_are_refused()
    {
        var (server, _) = await HubServer.StartAsync(new HubOptions { MaxRequestBytes = 100, MaxChannelsPerConnection = 2 });
        await using var _s = server;
        await using var c = await JsonClient.ConnectAsync(server);
        await c.SendAsync(new { type = "ping", pad = new string('x', 200) });
        Assert.Equal("too_large", (await c.NextAsync("error")).GetProperty("code").GetString()); // too large to be read, so no id
        await c.AskAsync(new { type = "join", channel = "a" });
        await c.AskAsync(new { type = "join", channel = "b" });
        Assert.Equal("too_many_channels", (await c.AskAsync(new { type = "join", channel = "c" })).GetProperty("code").GetString());
    }

    [Fact]
    public async Task Join_with_since_replays_exactly_the_missed_messages_or_says_they_are_gone()
    {
        var (server, _) = await HubServer.StartAsync(new HubOptions { HistorySize = 5 });
        await using var _s = server;
        await using var publisher = await JsonClient.ConnectAsync(server);
        await publisher.AskAsync(new { type = "join", channel = "news" });
        for (int i = 1; i <= 8; i++)
            await publisher.AskAsync(new { type = "publish", channel = "news", data = i });

        await using var back = await JsonClient.ConnectAsync(server);
        var ok = await back.AskAsync(new { type = "join", channel = "news", since = 5 });
        Assert.True(ok.GetProperty("recovered").GetBoolean());
        Assert.Equal(3, ok.GetProperty("missed").GetInt32());
        Assert.Equal(8, ok.GetProperty("offset").GetInt64());
        for (int i = 6; i <= 8; i++)
            Assert.Equal(i, (await back.NextAsync("message")).GetProperty("offset").GetInt64());
        await publisher.AskAsync(new { type = "publish", channel = "news", data = 9 });
        Assert.Equal(9, (await back.NextAsync("message")).GetProperty("offset").GetInt64());

        await using var late = await JsonClient.ConnectAsync(server);
        var gone = await late.AskAsync(new { type = "join", channel = "news", since = 1 });
        Assert.False(gone.GetProperty("recovered").GetBoolean());
        var history = await late.AskAsync(new { type = "history", channel = "news", limit = 3 });
        Assert.Equal([7L, 8L, 9L], history.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64()));
    }

    [Fact]
    public async Task Positions_are_epoch_and_offset_and_another_epoch_is_not_recovered()
    {
        var (server, _) = await HubServer.StartAsync();
        await using var _s = server;
        await using var publisher = await JsonClient.ConnectAsync(server);
        string epoch = (await publisher.AskAsync(new { type = "join", channel = "news" })).GetProperty("epoch").GetString()!;
        Assert.False(string.IsNullOrEmpty(epoch));
        var published = await publisher.AskAsync(new { type = "publish", channel = "news", data = 1 });
        Assert.Equal(epoch, published.GetProperty("epoch").GetString());
        await publisher.AskAsync(new { type = "publish", channel = "news", data = 2 });

        await using var back = await JsonClient.ConnectAsync(server);
        var same = await back.AskAsync(new { type = "join", channel = "news", since = 1, epoch });
        Assert.True(same.GetProperty("recovered").GetBoolean());
        var replayed = await back.NextAsync("message");
        Assert.Equal(2, replayed.GetProperty("offset").GetInt64());
        Assert.Equal(epoch, replayed.GetProperty("epoch").GetString());

        // A position from a stream that is gone (a restarted server had offsets of its own).
        await using var stranger = await JsonClient.ConnectAsync(server);
        var gone = await stranger.AskAsync(new { type = "join", channel = "news", since = 1, epoch = "old-epoch" });
        Assert.False(gone.GetProperty("recovered").GetBoolean());
        Assert.Equal(0, gone.GetProperty("missed").GetInt32());
        Assert.Equal(epoch, gone.GetProperty("epoch").GetString());
        Assert.Equal(2, gone.GetProperty("offset").GetInt64());

        var bad = await stranger.AskAsync(new { type = "join", channel = "news", since = 1, epoch = 7 });
        Assert.Equal("bad_request", bad.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Presence_lists_members_and_tells_of_joins_and_leaves()
    {
        var (server, _) = await HubServer.StartAsync();
        await using var _s = server;
        await using var ada = await JsonClient.ConnectAsync(server);
        await ada.AskAsync(new { type = "join", channel = "room", info = new { name = "ada" } });
        var bob = await JsonClient.ConnectAsync(server);
        await bob.AskAsync(new { type = "join", channel = "room", info = new { name = "bob" } });
        var joined = await ada.NextAsync("joined");
        Assert.Equal(bob.ClientId, joined.GetProperty("client").GetString());
        Assert.Equal("bob", joined.GetProperty("info").GetProperty("name").GetString());
        var presence = await ada.AskAsync(new { type = "presence", channel = "room" });
        Assert.Equal(["ada", "bob"], presence.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("info").GetProperty("name").GetString()).Order());
        await bob.DisposeAsync();
        var left = await ada.NextAsync("left");
        Assert.Equal(bob.ClientId, left.GetProperty("client").GetString());
    }

    // A subscriber that stops reading (raw, so its socket is never drained) and a publisher, both in "firehose".
    private static async Task<(Testing.RawClient Slow, JsonClient Publisher)> SlowSubscriberAndPublisherAsync(Server.WebSocketServer server)
    {
        var slow = await Testing.RawClient.UpgradeAsync(server.LocalEndPoint!, "/hub");
        await slow.SendAsync(Testing.Frames.ClientText("{\"type\":\"join\",\"channel\":\"firehose\"}"));
        var publisher = await JsonClient.ConnectAsync(server);
        await publisher.AskAsync(new { type = "join", channel = "firehose" });
        await Task.Delay(200);
        return (slow, publisher);
    }

    [Fact]
    public async Task A_slow_consumer_is_closed_with_1013_and_recovers_everything_after_reconnecting()
    {
        var (server, hub) = await HubServer.StartAsync(new HubOptions { MaxQueuedMessages = 20, MaxQueuedBytes = 256 * 1024, HistorySize = 10_000 });
        await using var _s = server;
        var (slow, publisher) = await SlowSubscriberAndPublisherAsync(server);
        await using var _slow = slow;
        await using var _publisher = publisher;
        string big = new('z', 16 * 1024);
        long last = 0;
        for (int i = 0; i < 600 && hub.Metrics.DroppedSlowConsumers == 0; i++)
            last = (await publisher.AskAsync(new { type = "publish", channel = "firehose", data = big })).GetProperty("offset").GetInt64();
        Assert.Equal(1, hub.Metrics.DroppedSlowConsumers);
        var close = await slow.ReadCloseAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1013, close!.CloseCode);

        // Back with since=0: every message is replayed, in order.
        await using var back = await JsonClient.ConnectAsync(server);
        var ok = await back.AskAsync(new { type = "join", channel = "firehose", since = 0 });
        Assert.True(ok.GetProperty("recovered").GetBoolean());
        for (long i = 1; i <= last; i++)
            Assert.Equal(i, (await back.NextAsync("message")).GetProperty("offset").GetInt64());
    }

    [Fact]
    public async Task A_slow_consumer_that_reads_late_still_gets_its_1013_and_not_the_dropped_queue()
    {
        // The close timeout (1 s here) is shorter than the subscriber's pause: the close must not
        // wait behind the dropped queue, and the timeout must not end TCP before the close frame
        // is written, or the subscriber sees 1006 when it comes back.
        var hub = new MessageHub(new HubOptions { MaxQueuedMessages = 20, MaxQueuedBytes = 256 * 1024, HistorySize = 10_000 });
        await using var server = await Testing.Loopback.StartEchoServerAsync(new Server.WebSocketServerOptions { CloseTimeout = TimeSpan.FromSeconds(1) },
            s => s.Map("/hub", hub.HandleAsync, hub.RouteOptions));
        var (slow, publisher) = await SlowSubscriberAndPublisherAsync(server);
        await using var _slow = slow;
        await using var _publisher = publisher;
        string big = new('z', 16 * 1024);
        int published = 0;
        for (; published < 2_000 && hub.Metrics.DroppedSlowConsumers == 0; published++)
            await publisher.AskAsync(new { type = "publish", channel = "firehose", data = big });
        Assert.Equal(1, hub.Metrics.DroppedSlowConsumers);
        int publishedAtDrop = published;
        // Keep publishing for a while: none of it may reach the dropped subscriber.
        for (int i = 0; i < 50; i++, published++)
            await publisher.AskAsync(new { type = "publish", channel = "firehose", data = big });

        await Task.Delay(TimeSpan.FromSeconds(3)); // the subscriber comes back late
        int messages = 0;
        Testing.RawFrame? close = null;
        while (await slow.ReadFrameAsync(TimeSpan.FromSeconds(20)) is { } frame)
        {
            if (frame.Opcode == Opcode.Close)
            {
                close = frame;
                break;
            }
            messages++;
        }
        Assert.NotNull(close);
        Assert.Equal(1013, close!.CloseCode);
        // What reached it: the socket buffers' worth and the message being written, not the
        // dropped queue (15 messages by bytes; 3 spare for timing) and nothing published later (+2:
        // welcome, join's ok).
        Assert.True(messages <= publishedAtDrop + 2 - 12, $"{messages} messages reached the subscriber dropped after {publishedAtDrop}");
    }

    [Fact]
    public async Task Jwt_tokens_allow_and_deny()
    {
        const string secret = "a-test-secret-of-some-length";
        var (server, _) = await HubServer.StartAsync(new HubOptions { Authenticate = JwtAuthenticator.Create(secret) });
        await using var _s = server;
        var refused = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => JsonClient.ConnectAsync(server));
        Assert.Equal(401, refused.StatusCode);
        var forged = JwtAuthenticator.Issue("wrong-secret-xxxxxxxxxxx", "eve", ["*"]);
        Assert.Equal(401, (await Assert.ThrowsAsync<WebSocketHandshakeException>(() => JsonClient.ConnectAsync(server, "?access_token=" + forged))).StatusCode);
        var expired = JwtAuthenticator.Issue(secret, "old", ["*"], expires: DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.Equal(401, (await Assert.ThrowsAsync<WebSocketHandshakeException>(() => JsonClient.ConnectAsync(server, "?access_token=" + expired))).StatusCode);

        string token = JwtAuthenticator.Issue(secret, "ada", ["team-*"], publish: ["team-a"]);
        var options = new WebSocketClientOptions();
        options.Headers.Add(new("Authorization", "Bearer " + token));
        await using var ada = await JsonClient.ConnectAsync(server, options: options);
        Assert.Equal("ok", (await ada.AskAsync(new { type = "join", channel = "team-a" })).GetProperty("type").GetString());
        Assert.Equal("ok", (await ada.AskAsync(new { type = "join", channel = "team-b" })).GetProperty("type").GetString());
        Assert.Equal("forbidden", (await ada.AskAsync(new { type = "join", channel = "admin" })).GetProperty("code").GetString());
        Assert.Equal("ok", (await ada.AskAsync(new { type = "publish", channel = "team-a", data = "hi" })).GetProperty("type").GetString());
        Assert.Equal("forbidden", (await ada.AskAsync(new { type = "publish", channel = "team-b", data = "hi" })).GetProperty("code").GetString());
        var presence = await ada.AskAsync(new { type = "presence", channel = "team-a" });
        Assert.Equal("ada", presence.GetProperty("members")[0].GetProperty("info").GetProperty("user").GetString());
        // Every request that names a channel checks the same rule: a token for team-* sees nothing of admin.
        Assert.Equal("forbidden", (await ada.AskAsync(new { type = "presence", channel = "admin" })).GetProperty("code").GetString());
        Assert.Equal("forbidden", (await ada.AskAsync(new { type = "history", channel = "admin" })).GetProperty("code").GetString());
    }

    [Fact]
    public async Task Metrics_count_connections_and_messages()
    {
        var (server, hub) = await HubServer.StartAsync();
        await using var _s = server;
        await using var c = await JsonClient.ConnectAsync(server);
        await c.AskAsync(new { type = "join", channel = "m" });
        await c.AskAsync(new { type = "publish", channel = "m", data = 1 });
        string text = hub.FormatMetrics(server);
        Assert.Contains("duplex_hub_connections 1\n", text);
        Assert.Contains("duplex_hub_channels 1\n", text);
        Assert.Contains("duplex_hub_messages_out_total 1\n", text);
        Assert.Contains("# TYPE duplex_hub_dropped_slow_consumers_total counter", text);
    }
}

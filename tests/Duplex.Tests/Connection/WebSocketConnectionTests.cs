using System.Text;
using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Tests.Connection;

public class WebSocketConnectionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Text_and_binary_travel_both_ways()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        await client.SendTextAsync("héllo");
        var message = await server.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(MessageType.Text, message.Type);
        Assert.Equal("héllo", message.GetText());

        await server.SendBinaryAsync(new byte[] { 1, 2, 3 });
        message = await client.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(MessageType.Binary, message.Type);
        Assert.Equal(new byte[] { 1, 2, 3 }, message.ToArray());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(125)]
    [InlineData(126)]
    [InlineData(65535)]
    [InlineData(65536)]
    [InlineData(16 * 1024 * 1024)]
    public async Task Messages_of_every_length_class_arrive_intact_both_ways(int length)
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        var payload = new byte[length];
        new Random(length).NextBytes(payload);

        var receive = server.ReceiveAsync().AsTask();
        await client.SendBinaryAsync(payload);
        Assert.Equal(payload, (await receive.WaitAsync(Wait)).ToArray());

        receive = client.ReceiveAsync().AsTask();
        await server.SendBinaryAsync(payload);
        Assert.Equal(payload, (await receive.WaitAsync(Wait)).ToArray());
    }

    [Fact]
    public async Task Concurrent_sends_never_interleave_frames()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        const int tasks = 8, each = 200;
        var senders = Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            for (int i = 0; i < each; i++)
            {
                // Sizes vary so that large and small frames race each other.
                string text = $"{t}:{i}:" + new string((char)('a' + t), (i * 37) % 5000);
                await client.SendTextAsync(text);
            }
        })).ToArray();
        var seen = new HashSet<string>();
        for (int n = 0; n < tasks * each; n++)
        {
            var message = await server.ReceiveAsync().AsTask().WaitAsync(Wait);
            string text = message.GetText();
            var parts = text.Split(':');
            int t = int.Parse(parts[0]), i = int.Parse(parts[1]);
            Assert.Equal(new string((char)('a' + t), (i * 37) % 5000), parts[2]);
            Assert.True(seen.Add($"{t}:{i}"));
        }
        await Task.WhenAll(senders);
    }

    [Fact]
    public async Task Streamed_message_arrives_as_one_with_pings_between_its_frames()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        var pongs = new List<string>();
        client.PongReceived = p => { lock (pongs) pongs.Add(Encoding.UTF8.GetString(p.Span)); };
        var serverLoop = Task.Run(async () => await server.ReceiveAsync());

        await using (var writer = await client.BeginMessageAsync(MessageType.Text))
        {
            var euro = Encoding.UTF8.GetBytes("€");
            await writer.WriteAsync(Encoding.UTF8.GetBytes("price: "));
            await writer.WriteAsync(euro.AsMemory(0, 1)); // split inside a character
            await client.PingAsync("between"u8.ToArray());
            await writer.WriteAsync(euro.AsMemory(1));
            await writer.CompleteAsync(Encoding.UTF8.GetBytes("5"));
        }
        var message = await serverLoop.WaitAsync(Wait);
        Assert.Equal("price: €5", message.GetText());
        // The server answered the ping while assembling the message; read the pong.
        var clientReceive = client.ReceiveAsync().AsTask();
        await server.SendTextAsync("flush");
        Assert.Equal("flush", (await clientReceive.WaitAsync(Wait)).GetText());
        Assert.Contains("between", pongs);
    }

    [Fact]
    public async Task Streamed_text_refuses_invalid_utf8_and_stays_usable()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        await using (var writer = await client.BeginMessageAsync(MessageType.Text))
        {
            await writer.WriteAsync("ok "u8.ToArray());
            await Assert.ThrowsAsync<ArgumentException>(() => writer.WriteAsync(new byte[] { 0xff }).AsTask());
            await writer.CompleteAsync("done"u8.ToArray());
        }
        Assert.Equal("ok done", (await server.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        await Assert.ThrowsAsync<ArgumentException>(() => client.SendTextAsync(new byte[] { 0xc0, 0x80 }).AsTask());
    }

    [Fact]
    public async Task A_ping_is_answered_with_a_pong_carrying_the_same_payload()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        var pong = new TaskCompletionSource<byte[]>();
        client.PongReceived = p => pong.TrySetResult(p.ToArray());
        var serverLoop = server.ReceiveAsync().AsTask();
        var clientLoop = client.ReceiveAsync().AsTask();
        byte[] payload = Enumerable.Range(0, 125).Select(i => (byte)i).ToArray();
        await client.PingAsync(payload);
        Assert.Equal(payload, await pong.Task.WaitAsync(Wait));
        await Assert.ThrowsAsync<ArgumentException>(() => client.PingAsync(new byte[126]).AsTask());
        await client.CloseAsync();
        await Task.WhenAll(serverLoop, clientLoop).WaitAsync(Wait);
    }

    [Fact]
    public async Task Client_initiated_close_reports_status_and_reason_on_both_sides()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        var serverLoop = server.ReceiveAsync().AsTask();
        await client.CloseAsync(CloseStatus.NormalClosure, "bye").WaitAsync(Wait);
        var closed = await serverLoop.WaitAsync(Wait);
        Assert.True(closed.IsClose);
        Assert.Equal(CloseStatus.NormalClosure, closed.CloseStatus);
        Assert.Equal("bye", closed.CloseReason);
        Assert.Equal(ConnectionState.Closed, client.State);
        Assert.Equal(CloseStatus.NormalClosure, client.CloseStatus);
        Assert.Equal(ConnectionState.Closed, server.State);
        // Receiving again keeps reporting the end.
        Assert.True((await server.ReceiveAsync()).IsClose);
        await Assert.ThrowsAsync<WebSocketClosedException>(() => client.SendTextAsync("late").AsTask());
    }

    [Fact]
    public async Task Server_initiated_close_with_an_application_code()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        var clientLoop = client.ReceiveAsync().AsTask();
        await server.CloseAsync((CloseStatus)4001, "custom").WaitAsync(Wait);
        var closed = await clientLoop.WaitAsync(Wait);
        Assert.Equal(4001, (int)closed.CloseStatus);
        Assert.Equal("custom", closed.CloseReason);
        Assert.Equal(4001, (int)server.CloseStatus!);
    }

    [Fact]
    public async Task Both_sides_closing_at_once_completes_cleanly()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        await Task.WhenAll(client.CloseAsync(CloseStatus.GoingAway), server.CloseAsync(CloseStatus.NormalClosure)).WaitAsync(Wait);
        Assert.Equal(ConnectionState.Closed, client.State);
        Assert.Equal(ConnectionState.Closed, server.State);
        Assert.Equal(CloseStatus.NormalClosure, client.CloseStatus);
        Assert.Equal(CloseStatus.GoingAway, server.CloseStatus);
    }

    [Fact]
    public async Task Close_with_a_bad_code_throws_and_leaves_the_connection_open()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.CloseAsync(CloseStatus.AbnormalClosure));
        await Assert.ThrowsAsync<ArgumentException>(() => client.CloseAsync(CloseStatus.NormalClosure, new string('x', 200)));
        Assert.Equal(ConnectionState.Open, client.State);
        await client.SendTextAsync("still open");
        Assert.Equal("still open", (await server.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
    }

    [Fact]
    public async Task Peer_vanishing_without_a_close_frame_is_reported_as_1006()
    {
        var (clientStream, serverStream) = await Loopback.CreatePairAsync();
        await using var server = WebSocketConnection.Create(serverStream, Role.Server);
        var receive = server.ReceiveAsync().AsTask();
        clientStream.Dispose();
        var closed = await receive.WaitAsync(Wait);
        Assert.Equal(CloseStatus.AbnormalClosure, closed.CloseStatus);
    }

    [Fact]
    public async Task Protocol_violation_closes_with_1002_and_reports_it()
    {
        var (peer, serverStream) = await Loopback.CreatePairAsync();
        await using var server = WebSocketConnection.Create(serverStream, Role.Server);
        var receive = server.ReceiveAsync().AsTask();
        await peer.WriteAsync(Frames.Build(Opcode.Text, "unmasked"u8));
        var sent = await RawFrame.ReadAsync(peer).WaitAsync(Wait);
        Assert.Equal(Opcode.Close, sent!.Opcode);
        Assert.Equal(1002, sent.CloseCode);
        peer.Dispose();
        var closed = await receive.WaitAsync(Wait);
        Assert.Equal(CloseStatus.ProtocolError, closed.CloseStatus);
        Assert.Contains("masked", closed.CloseReason);
    }

    [Fact]
    public async Task Close_times_out_when_the_peer_never_answers()
    {
        var (peer, clientStream) = await Loopback.CreatePairAsync();
        await using var client = WebSocketConnection.Create(clientStream, Role.Client,
            new WebSocketOptions { CloseTimeout = TimeSpan.FromMilliseconds(300) });
        var started = DateTime.UtcNow;
        await client.CloseAsync().WaitAsync(Wait);
        Assert.Equal(ConnectionState.Closed, client.State);
        Assert.Equal(CloseStatus.AbnormalClosure, client.CloseStatus);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        var frame = await RawFrame.ReadAsync(peer).WaitAsync(Wait);
        Assert.Equal(Opcode.Close, frame!.Opcode);
        Assert.True(frame.Masked);
        peer.Dispose();
    }

    [Fact]
    public async Task Keep_alive_drops_a_silent_peer_even_when_nobody_receives()
    {
        var (peer, serverStream) = await Loopback.CreatePairAsync();
        await using var server = WebSocketConnection.Create(serverStream, Role.Server, new WebSocketOptions
        {
            KeepAliveInterval = TimeSpan.FromMilliseconds(100),
            KeepAliveTimeout = TimeSpan.FromMilliseconds(300),
        });
        await server.Completion.WaitAsync(Wait);
        Assert.Equal(CloseStatus.AbnormalClosure, server.CloseStatus);
        Assert.Contains("keep-alive", server.CloseReason);
        var ping = await RawFrame.ReadAsync(peer).WaitAsync(Wait);
        Assert.Equal(Opcode.Ping, ping!.Opcode);
        peer.Dispose();
    }

    [Fact]
    public async Task Keep_alive_keeps_an_idle_healthy_connection_open_and_loses_no_message()
    {
        var options = new WebSocketOptions { KeepAliveInterval = TimeSpan.FromMilliseconds(50), KeepAliveTimeout = TimeSpan.FromMilliseconds(1000) };
        await using var pair = await ConnectionPair.CreateAsync(options, options);
        var (client, server) = (pair.Client, pair.Server);
        // Nobody calls ReceiveAsync: the read-ahead answers pings on both sides.
        await client.SendTextAsync("early");
        await Task.Delay(2500); // well past the timeout: without answered pings both sides would have dropped
        Assert.Equal(ConnectionState.Open, client.State);
        Assert.Equal(ConnectionState.Open, server.State);
        Assert.Equal("early", (await server.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        await client.SendTextAsync("late");
        Assert.Equal("late", (await server.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_receiver_that_pauses_while_keep_alive_reads_ahead_still_gets_every_message(bool eventLoop)
    {
        // The stall this guards against: the read-ahead drained a full buffer without noting that
        // more could be there, and the next receive waited for an edge that never came while the
        // socket held bytes (seen with a HubClient whose queue was full for a while).
        // A small message first (the client's read of it drains the socket), then a burst small
        // enough to sit whole in the client's socket buffer, then nothing more: no new bytes, so
        // no new edge, will come; only what is already there can be read.
        const int count = 5;
        var payload = new byte[16 * 1024];
        await using var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/burst", async (ws, _, _) =>
        {
            await Task.Delay(200); // after the handshake's bytes, so the client reads it on its own
            await ws.SendTextAsync("hello");
            await Task.Delay(300);
            for (int i = 0; i < count; i++)
            {
                payload[0] = (byte)i;
                await ws.SendBinaryAsync(payload);
            }
            while (!(await ws.ReceiveAsync()).IsClose)
            {
            }
        }));
        await using var client = await WebSocketClient.ConnectAsync(server.Url("/burst"), new WebSocketClientOptions
        {
            UseEventLoop = eventLoop,
            // Keep-alive on but no ping in the test (a pong would bring new bytes, and with them an
            // edge); the short close timeout makes the timer that reads ahead tick every 50 ms.
            KeepAliveInterval = TimeSpan.FromSeconds(30),
            CloseTimeout = TimeSpan.FromMilliseconds(400),
        });
        Assert.Equal("hello", (await client.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        await Task.Delay(1300); // the application does not receive; keep-alive ticks read ahead meanwhile
        for (int i = 0; i < count; i++)
        {
            var message = await client.ReceiveAsync().AsTask().WaitAsync(Wait);
            Assert.Equal(MessageType.Binary, message.Type);
            Assert.Equal((byte)i, message.Payload.Span[0]);
        }
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(125, false)]
    [InlineData(126, false)]
    [InlineData(65_000, false)]   // a 16-bit length
    [InlineData(70_000, false)]   // a 64-bit length, sent as a direct payload
    [InlineData(300, true)]       // compressed
    public async Task Text_given_as_a_string_arrives_exactly_from_both_roles(int approximateLength, bool compress)
    {
        // ASCII, two-, three- and four-byte UTF-8 (a surrogate pair), cut to about the length.
        string unit = "ab é 中 😀 ";
        string text = string.Concat(Enumerable.Repeat(unit, approximateLength / unit.Length + 1))[..approximateLength];
        if (text.Length > 0 && char.IsHighSurrogate(text[^1]))
            text = text[..^1];
        var options = new WebSocketOptions { Compression = compress ? new PerMessageDeflateOptions() : null };
        await using var pair = await ConnectionPair.CreateAsync(options, options);
        await pair.Client.SendTextAsync(text);
        var atServer = await pair.Server.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(MessageType.Text, atServer.Type);
        Assert.Equal(text, atServer.GetText());
        await pair.Server.SendTextAsync(text);
        Assert.Equal(text, (await pair.Client.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
    }

    [Fact]
    public async Task Cancelling_a_receive_aborts_the_connection()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        using var cts = new CancellationTokenSource(100);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ReceiveAsync(cts.Token).AsTask());
        Assert.Equal(ConnectionState.Closed, client.State);
    }

    [Fact]
    public async Task Bytes_received_with_the_handshake_are_not_lost()
    {
        var (peer, clientStream) = await Loopback.CreatePairAsync();
        var first = Frames.Build(Opcode.Text, "first"u8);
        await using var client = WebSocketConnection.Create(clientStream, Role.Client, received: first);
        await peer.WriteAsync(Frames.Build(Opcode.Text, "second"u8));
        Assert.Equal("first", (await client.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        Assert.Equal("second", (await client.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        peer.Dispose();
    }

    [Fact]
    public async Task ReadAllAsync_yields_messages_until_close()
    {
        await using var pair = await ConnectionPair.CreateAsync();
        var (client, server) = (pair.Client, pair.Server);
        var received = Task.Run(async () =>
        {
            var texts = new List<string>();
            await foreach (var m in server.ReadAllAsync())
                texts.Add(m.GetText());
            return texts;
        });
        await client.SendTextAsync("a");
        await client.SendTextAsync("b");
        await client.CloseAsync();
        Assert.Equal(["a", "b"], await received.WaitAsync(Wait));
    }

    [Fact]
    public async Task A_connection_dropped_without_closing_is_collected_even_with_keep_alive_running()
    {
        var (peer, serverStream) = await Loopback.CreatePairAsync();
        var dropped = CreateAndDrop(serverStream);
        await Task.Delay(200); // keep-alive ticks (every 10 ms here) and reads ahead meanwhile
        for (int i = 0; i < 20 && dropped.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            await Task.Delay(20);
        }
        Assert.False(dropped.IsAlive);
        peer.Dispose();
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference CreateAndDrop(Stream stream) => new(WebSocketConnection.Create(stream, Role.Server, new WebSocketOptions
    {
        KeepAliveInterval = TimeSpan.FromMilliseconds(50),
        KeepAliveTimeout = TimeSpan.FromSeconds(10),
    }));
}

using System.Text;
using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Tests.Protocol;

/// <summary>The protocol object alone: bytes in, events and bytes out, time from a manual clock. No socket.</summary>
public class WebSocketProtocolTests
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(60);

    private static WebSocketProtocol Server(ManualClock? clock = null, TimeSpan? keepAlive = null) => new(new ProtocolSettings(
        Role.Server, 1 << 20, keepAlive ?? TimeSpan.Zero, TimeSpan.FromSeconds(10), CloseTimeout, clock ?? new ManualClock(), SendTimeout));

    private static WebSocketProtocol Client(ManualClock? clock = null) => new(new ProtocolSettings(
        Role.Client, 1 << 20, TimeSpan.Zero, TimeSpan.FromSeconds(10), CloseTimeout, clock ?? new ManualClock(), SendTimeout));

    // The frames a server-side protocol wrote (server frames are not masked), then clears the output.
    private static List<RawFrame> TakeOutput(WebSocketProtocol protocol)
    {
        var bytes = protocol.Output.Pending.ToArray();
        protocol.OutputWritten();
        var frames = new List<RawFrame>();
        using var stream = new MemoryStream(bytes);
        while (RawFrame.ReadAsync(stream).GetAwaiter().GetResult() is { } frame)
            frames.Add(frame);
        return frames;
    }

    [Fact]
    public void A_ping_is_answered_with_a_pong_carrying_its_payload()
    {
        var server = Server();
        server.Received(Frames.Client(Opcode.Ping, "hi"u8));
        Assert.Equal(ProtocolEvent.Ping, server.Receive(ReceiveMode.Deliver));
        Assert.True(server.OwesFrames);
        server.WriteOwedFrames();
        var pong = Assert.Single(TakeOutput(server));
        Assert.Equal(Opcode.Pong, pong.Opcode);
        Assert.Equal("hi", pong.Text);
        Assert.Equal(ProtocolEvent.NeedMoreData, server.Receive(ReceiveMode.Deliver));
    }

    [Fact]
    public void Peer_closes_first_we_echo_its_status_and_the_server_ends_tcp()
    {
        var server = Server();
        server.Received(Frames.Client(Opcode.Close, Frames.ClosePayload(4001, "bye")));
        Assert.Equal(ProtocolEvent.Close, server.Receive(ReceiveMode.Deliver));
        Assert.Equal(ProtocolState.CloseReceived, server.State);
        Assert.False(server.ShouldEndTransport);
        Assert.True(server.CanSendData); // the peer closed; ours has not gone yet
        server.WriteOwedFrames();
        var echo = Assert.Single(TakeOutput(server));
        Assert.Equal(Opcode.Close, echo.Opcode);
        Assert.Equal(Frames.ClosePayload(4001), echo.Payload); // the status, without the reason
        Assert.Equal(ProtocolState.Closing, server.State);
        Assert.True(server.ShouldEndTransport);
        Assert.True(server.ShutsDownFirst);
        Assert.Equal((CloseStatus)4001, server.CloseStatus);
        Assert.Equal("bye", server.CloseReason);
        Assert.True(server.End(CloseStatus.AbnormalClosure, "tcp ended"));
        Assert.Equal(ProtocolState.Closed, server.State);
        Assert.Equal((CloseStatus)4001, server.CloseStatus); // the first record wins
    }

    [Fact]
    public void We_close_first_and_the_peers_close_completes_the_handshake()
    {
        var client = Client();
        Assert.True(client.WriteClose(CloseStatus.NormalClosure, "done"));
        Assert.Equal(ProtocolState.CloseSent, client.State);
        Assert.False(client.CanSendData);
        Assert.False(client.WriteMessage(Opcode.Text, "late"u8.ToArray()));
        Assert.False(client.WriteClose(CloseStatus.NormalClosure, null)); // only one close frame
        Assert.False(client.ShouldEndTransport);
        client.Received(Frames.Build(Opcode.Close, Frames.ClosePayload(1000)));
        Assert.Equal(ProtocolEvent.Close, client.Receive(ReceiveMode.Discard));
        Assert.False(client.OwesFrames); // no echo: ours went first
        Assert.Equal(ProtocolState.Closing, client.State);
        Assert.True(client.ShouldEndTransport);
        Assert.False(client.ShutsDownFirst); // a client waits for the server's FIN
        Assert.Equal(CloseStatus.NormalClosure, client.CloseStatus);
    }

    [Fact]
    public void A_broken_rule_owes_one_close_frame_with_its_status_and_reason()
    {
        var server = Server();
        server.Received(Frames.Build(Opcode.Text, "unmasked"u8)); // a client must mask
        Assert.Equal(ProtocolEvent.Failed, server.Receive(ReceiveMode.Deliver));
        Assert.Equal(CloseStatus.ProtocolError, server.CloseStatus);
        server.WriteOwedFrames();
        var close = Assert.Single(TakeOutput(server));
        Assert.Equal(1002, close.CloseCode);
        Assert.Contains("not masked", close.CloseReason);
        Assert.True(server.ShouldEndTransport); // failed: no waiting for the peer's close
    }

    [Fact]
    public void A_broken_rule_after_our_close_owes_nothing_more_and_ends_tcp_at_once()
    {
        var server = Server();
        server.WriteClose(CloseStatus.GoingAway, "restart");
        TakeOutput(server);
        server.Received(Frames.Build(Opcode.Binary, "unmasked"u8));
        Assert.Equal(ProtocolEvent.Failed, server.Receive(ReceiveMode.Discard));
        Assert.False(server.OwesFrames); // only one close frame ever
        Assert.True(server.ShouldEndTransport);
        Assert.Equal(CloseStatus.ProtocolError, server.CloseStatus);
    }

    [Fact]
    public void A_lost_connection_ends_with_1006_and_nothing_more_is_read_or_sent()
    {
        var client = Client();
        client.Received(Frames.Build(Opcode.Text, "half"u8)[..3]);
        Assert.Equal(ProtocolEvent.NeedMoreData, client.Receive(ReceiveMode.Deliver));
        Assert.True(client.End(CloseStatus.AbnormalClosure, "connection closed without a close frame"));
        Assert.False(client.End(CloseStatus.NormalClosure, null)); // ended once
        Assert.Equal(ProtocolState.Closed, client.State);
        Assert.Equal(CloseStatus.AbnormalClosure, client.CloseStatus);
        Assert.Equal(ProtocolEvent.Ended, client.Receive(ReceiveMode.Deliver));
        Assert.False(client.WriteMessage(Opcode.Text, "late"u8.ToArray()));
        Assert.False(client.WriteClose(CloseStatus.NormalClosure, null));
    }

    [Fact]
    public void Invalid_utf8_fails_with_1007()
    {
        var server = Server();
        server.Received(Frames.Client(Opcode.Text, new byte[] { 0xC3, 0x28 }));
        Assert.Equal(ProtocolEvent.Failed, server.Receive(ReceiveMode.Deliver));
        Assert.Equal(CloseStatus.InvalidPayloadData, server.CloseStatus);
    }

    [Fact]
    public void No_pong_once_our_close_has_gone_out()
    {
        var server = Server();
        server.WriteClose(CloseStatus.NormalClosure, null);
        TakeOutput(server);
        server.Received(Frames.Client(Opcode.Ping, "late"u8));
        Assert.Equal(ProtocolEvent.Ping, server.Receive(ReceiveMode.Discard));
        server.WriteOwedFrames();
        Assert.Empty(TakeOutput(server));
    }

    [Fact]
    public void Discarding_while_closing_drops_data_and_finds_the_close()
    {
        var server = Server();
        server.WriteClose(CloseStatus.GoingAway, null);
        server.Received(Frames.Concat(Frames.ClientText("a"), Frames.ClientText("b"), Frames.Client(Opcode.Close, Frames.ClosePayload(1001))));
        Assert.Equal(ProtocolEvent.Close, server.Receive(ReceiveMode.Discard));
        Assert.Equal(CloseStatus.GoingAway, server.CloseStatus);
    }

    [Fact]
    public void The_close_timeout_runs_from_the_first_close_frame_either_way()
    {
        var clock = new ManualClock();
        var server = Server(clock);
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: true));
        server.WriteClose(CloseStatus.NormalClosure, null);
        clock.Advance(CloseTimeout - TimeSpan.FromMilliseconds(1));
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: true));
        clock.Advance(TimeSpan.FromMilliseconds(2));
        Assert.Equal(TimerAction.CloseTimedOut, server.OnTimer(peerIsRead: true));

        var peerFirst = Server(clock);
        peerFirst.Received(Frames.Client(Opcode.Close, Frames.ClosePayload(1000)));
        peerFirst.Receive(ReceiveMode.Deliver);
        clock.Advance(CloseTimeout + TimeSpan.FromMilliseconds(1));
        Assert.Equal(TimerAction.CloseTimedOut, peerFirst.OnTimer(peerIsRead: true));
        peerFirst.End(CloseStatus.AbnormalClosure, null);
        Assert.Equal(TimerAction.None, peerFirst.OnTimer(peerIsRead: true));
    }

    [Fact]
    public void A_write_that_waits_past_the_send_timeout_falls_due_and_a_finished_one_resets_it()
    {
        var clock = new ManualClock();
        var server = Server(clock);
        server.WriteMessage(Opcode.Binary, new byte[10]);
        server.WriteWaiting();
        clock.Advance(SendTimeout - TimeSpan.FromSeconds(1));
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: true));
        server.OutputWritten(); // the peer read: the write went through
        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: true));
        server.WriteWaiting();
        clock.Advance(SendTimeout + TimeSpan.FromSeconds(1));
        Assert.Equal(TimerAction.SendTimedOut, server.OnTimer(peerIsRead: true));
    }

    [Fact]
    public void A_close_stuck_behind_a_full_socket_is_held_to_the_send_timeout_and_its_close_timeout_starts_once_written()
    {
        // A slow reader must get the close (a 1013, say) it was sent, not a TCP end: the close
        // timeout may not cut a close frame that is still on its way out.
        var clock = new ManualClock();
        var server = Server(clock);
        server.WriteClose(CloseStatus.TryAgainLater, "too slow");
        server.WriteWaiting();
        clock.Advance(CloseTimeout * 3);
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: true));
        server.OutputWritten(); // the peer read up to the close frame
        clock.Advance(CloseTimeout - TimeSpan.FromMilliseconds(1));
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: true));
        clock.Advance(TimeSpan.FromMilliseconds(2));
        Assert.Equal(TimerAction.CloseTimedOut, server.OnTimer(peerIsRead: true));

        var neverReads = Server(clock);
        neverReads.WriteClose(CloseStatus.TryAgainLater, null);
        neverReads.WriteWaiting();
        clock.Advance(SendTimeout + TimeSpan.FromSeconds(1));
        Assert.Equal(TimerAction.SendTimedOut, neverReads.OnTimer(peerIsRead: true));
    }

    [Fact]
    public void Keep_alive_pings_a_quiet_peer_and_gives_up_on_a_silent_one()
    {
        var clock = new ManualClock();
        var server = Server(clock, keepAlive: TimeSpan.FromSeconds(30));
        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: true));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TimerAction.SendPing, server.OnTimer(peerIsRead: true));
        Assert.True(server.WritePing(default));
        Assert.Equal(Opcode.Ping, Assert.Single(TakeOutput(server)).Opcode);
        clock.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: true));
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(TimerAction.KeepAliveTimedOut, server.OnTimer(peerIsRead: true));
    }

    [Fact]
    public void Keep_alive_is_satisfied_by_any_bytes_from_the_peer()
    {
        var clock = new ManualClock();
        var server = Server(clock, keepAlive: TimeSpan.FromSeconds(30));
        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(TimerAction.SendPing, server.OnTimer(peerIsRead: true));
        server.WritePing(default);
        clock.Advance(TimeSpan.FromSeconds(5));
        server.Received(Frames.Client(Opcode.Pong, default));
        Assert.Equal(ProtocolEvent.Pong, server.Receive(ReceiveMode.Deliver));
        clock.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: true));
        // A peer nobody reads cannot be judged: no ping, no timeout.
        clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(TimerAction.None, server.OnTimer(peerIsRead: false));
    }

    [Fact]
    public void Client_frames_are_masked_and_server_frames_are_not()
    {
        var client = Client();
        client.WriteMessage(Opcode.Text, "masked"u8.ToArray());
        var bytes = client.Output.Pending.ToArray();
        Assert.Equal(0x80, bytes[1] & 0x80);
        var reader = new MessageReader(Role.Server, 1 << 20);
        reader.Write(bytes);
        Assert.Equal(ReadEvent.Message, reader.Read());
        Assert.Equal("masked", Encoding.UTF8.GetString(reader.Payload.Span));
        var server = Server();
        server.WriteMessage(Opcode.Binary, new byte[] { 1, 2, 3 });
        Assert.Equal(0, server.Output.Pending.Span[1] & 0x80);
    }

    [Fact]
    public void A_large_server_payload_goes_straight_from_the_callers_memory()
    {
        var server = Server();
        var payload = new byte[100_000];
        server.WriteMessage(Opcode.Binary, payload);
        Assert.Equal(10, server.Output.Length); // the header only
        Assert.True(server.DirectPayload.Span == payload.AsSpan());
        server.OutputWritten();
        Assert.True(server.DirectPayload.IsEmpty);
    }

    [Fact]
    public void Compression_inside_the_protocol_round_trips_and_sets_rsv1_on_the_first_frame_only()
    {
        var parameters = new Duplex.Protocol.Deflate.DeflateParameters(false, false, 15, 15);
        var settings = new Duplex.Protocol.Deflate.DeflateSettings(0, 6, 8);
        var client = new WebSocketProtocol(new ProtocolSettings(Role.Client, 1 << 20, TimeSpan.Zero, TimeSpan.Zero, CloseTimeout, new ManualClock(), SendTimeout, parameters, settings));
        var server = new WebSocketProtocol(new ProtocolSettings(Role.Server, 1 << 20, TimeSpan.Zero, TimeSpan.Zero, CloseTimeout, new ManualClock(), SendTimeout, parameters, settings));
        string text = string.Concat(Enumerable.Repeat("compress me ", 50));
        client.WriteMessage(Opcode.Text, Encoding.UTF8.GetBytes(text));
        client.WriteFragment(Opcode.Text, false, Encoding.UTF8.GetBytes("part one, "));
        client.WriteFragment(Opcode.Continuation, true, Encoding.UTF8.GetBytes("part two"));
        var wire = client.Output.Pending.ToArray();
        Assert.Equal(0x40, wire[0] & 0x40);
        server.Received(wire);
        Assert.Equal(ProtocolEvent.Message, server.Receive(ReceiveMode.Deliver));
        Assert.Equal(text, Encoding.UTF8.GetString(server.Payload.Span));
        Assert.Equal(ProtocolEvent.Message, server.Receive(ReceiveMode.Deliver));
        Assert.Equal("part one, part two", Encoding.UTF8.GetString(server.Payload.Span));
    }
}

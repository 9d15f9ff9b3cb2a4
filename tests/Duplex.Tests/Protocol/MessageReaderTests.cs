using System.Text;
using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Tests.Protocol;

public class MessageReaderTests
{
    private sealed record Event(ReadEvent Kind, Opcode Type, byte[] Payload, int CloseCode = 0, string? Error = null, int ErrorCode = 0)
    {
        public override string ToString() => $"{Kind} {Type} {Convert.ToHexString(Payload)} {CloseCode} {ErrorCode} {Error}";
    }

    // Feeds the bytes in pieces of the given sizes (cycled) and collects every event until the reader stops.
    private static List<Event> Decode(byte[] bytes, Role role = Role.Client, long max = 1 << 24, Func<int, int>? pieceSize = null)
    {
        using var reader = new MessageReader(role, max);
        var events = new List<Event>();
        int at = 0, piece = 0;
        while (true)
        {
            var kind = reader.Read();
            if (kind == ReadEvent.NeedMoreData)
            {
                if (at == bytes.Length)
                    return events;
                int size = Math.Min(pieceSize?.Invoke(piece++) ?? bytes.Length, bytes.Length - at);
                var memory = reader.GetMemory();
                size = Math.Min(size, memory.Length);
                bytes.AsSpan(at, size).CopyTo(memory.Span);
                reader.Advance(size);
                at += size;
                continue;
            }
            events.Add(kind switch
            {
                ReadEvent.Close => new Event(kind, Opcode.Close, [], (int)reader.CloseStatus),
                ReadEvent.Error => new Event(kind, 0, [], 0, reader.Error.Reason, (int)reader.Error.Status),
                ReadEvent.Message => new Event(kind, reader.MessageType, reader.Payload.ToArray()),
                _ => new Event(kind, 0, reader.Payload.ToArray()),
            });
            if (kind is ReadEvent.Error or ReadEvent.Close)
                return events;
        }
    }

    [Fact]
    public void Rfc_single_frame_unmasked_text()
    {
        var events = Decode([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        var message = Assert.Single(events);
        Assert.Equal(ReadEvent.Message, message.Kind);
        Assert.Equal(Opcode.Text, message.Type);
        Assert.Equal("Hello", Encoding.UTF8.GetString(message.Payload));
    }

    [Fact]
    public void Rfc_single_frame_masked_text_on_the_server()
    {
        var events = Decode([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], Role.Server);
        Assert.Equal("Hello", Encoding.UTF8.GetString(Assert.Single(events).Payload));
    }

    [Fact]
    public void Rfc_fragmented_unmasked_text()
    {
        var events = Decode([0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
        Assert.Equal("Hello", Encoding.UTF8.GetString(Assert.Single(events).Payload));
    }

    [Fact]
    public void Rfc_unmasked_ping_and_masked_pong()
    {
        var ping = Assert.Single(Decode([0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]));
        Assert.Equal(ReadEvent.Ping, ping.Kind);
        Assert.Equal("Hello", Encoding.UTF8.GetString(ping.Payload));
        var pong = Assert.Single(Decode([0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], Role.Server));
        Assert.Equal(ReadEvent.Pong, pong.Kind);
        Assert.Equal("Hello", Encoding.UTF8.GetString(pong.Payload));
    }

    [Theory]
    [InlineData(256)]
    [InlineData(65536)]
    public void Rfc_binary_lengths(int length)
    {
        var payload = Enumerable.Range(0, length).Select(i => (byte)i).ToArray();
        var message = Assert.Single(Decode(Frames.Build(Opcode.Binary, payload)));
        Assert.Equal(Opcode.Binary, message.Type);
        Assert.Equal(payload, message.Payload);
    }

    // A stream that touches most paths: fragments with control frames between them, empty frames,
    // every length encoding, masked (server role).
    private static byte[] MixedStream()
    {
        var big = Enumerable.Range(0, 70_000).Select(i => (byte)(i * 7)).ToArray();
        return Frames.Concat(
            Frames.ClientText("Hello"),
            Frames.Client(Opcode.Text, "Hé"u8, fin: false),
            Frames.Client(Opcode.Ping, "p1"u8),
            Frames.Client(Opcode.Continuation, [], fin: false),
            Frames.Client(Opcode.Continuation, "llo wörld"u8),
            Frames.Client(Opcode.Binary, big),
            Frames.Client(Opcode.Binary, [0x01], fin: false),
            Frames.Client(Opcode.Pong, []),
            Frames.Client(Opcode.Continuation, big.AsSpan(0, 300)),
            Frames.Client(Opcode.Binary, []),
            Frames.Client(Opcode.Text, Encoding.UTF8.GetBytes("€"), fin: false),
            Frames.Client(Opcode.Continuation, [], fin: true),
            Frames.Client(Opcode.Close, Frames.ClosePayload(1000, "done")),
            Frames.ClientText("after close is ignored"));
    }

    [Fact]
    public void Mixed_stream_decodes_to_the_expected_events()
    {
        var events = Decode(MixedStream(), Role.Server);
        Assert.Equal(
            ["Message Text Hello", "Ping", "Message Text Héllo wörld", "Message Binary 70000", "Pong", "Message Binary 301", "Message Binary 0",
             "Message Text €", "Close 1000"],
            events.Select(e => e.Kind switch
            {
                ReadEvent.Message when e.Type == Opcode.Text => $"Message Text {Encoding.UTF8.GetString(e.Payload)}",
                ReadEvent.Message => $"Message Binary {e.Payload.Length}",
                ReadEvent.Close => $"Close {e.CloseCode}",
                _ => e.Kind.ToString(),
            }));
    }

    [Fact]
    public void Same_events_whatever_the_split_one_byte_at_a_time_or_random()
    {
        var bytes = MixedStream();
        var whole = Decode(bytes, Role.Server).Select(e => e.ToString()).ToList();
        Assert.Equal(whole, Decode(bytes, Role.Server, pieceSize: _ => 1).Select(e => e.ToString()));
        var random = new Random(7);
        for (int round = 0; round < 20; round++)
            Assert.Equal(whole, Decode(bytes, Role.Server, pieceSize: _ => random.Next(1, 3000)).Select(e => e.ToString()));
    }

    [Fact]
    public void Every_split_point_of_a_small_stream_gives_the_same_events()
    {
        var bytes = Frames.Concat(Frames.Client(Opcode.Text, "ab"u8, fin: false), Frames.Client(Opcode.Ping, "x"u8),
            Frames.Client(Opcode.Continuation, "cd"u8), Frames.Client(Opcode.Close, Frames.ClosePayload(1001)));
        var whole = Decode(bytes, Role.Server).Select(e => e.ToString()).ToList();
        for (int split = 1; split < bytes.Length; split++)
        {
            int s = split;
            Assert.Equal(whole, Decode(bytes, Role.Server, pieceSize: i => i == 0 ? s : bytes.Length).Select(e => e.ToString()));
        }
    }

    private static Event Failure(byte[] bytes, Role role = Role.Client, long max = 1 << 24)
    {
        var last = Decode(bytes, role, max).Last();
        Assert.Equal(ReadEvent.Error, last.Kind);
        return last;
    }

    [Theory]
    [InlineData(0x40)]
    [InlineData(0x20)]
    [InlineData(0x10)]
    public void Reserved_bits_fail_with_1002(byte rsv) =>
        Assert.Equal(1002, Failure(Frames.Build(Opcode.Text, "x"u8, rsv: rsv)).ErrorCode);

    [Theory]
    [InlineData(3)] [InlineData(4)] [InlineData(5)] [InlineData(6)] [InlineData(7)]
    [InlineData(0xB)] [InlineData(0xC)] [InlineData(0xD)] [InlineData(0xE)] [InlineData(0xF)]
    public void Reserved_opcodes_fail_with_1002(byte opcode) =>
        Assert.Equal(1002, Failure(Frames.Build((Opcode)opcode, [])).ErrorCode);

    [Fact]
    public void Unmasked_client_frame_fails_on_the_server() =>
        Assert.Equal(1002, Failure(Frames.Build(Opcode.Text, "x"u8), Role.Server).ErrorCode);

    [Fact]
    public void Masked_server_frame_fails_on_the_client() =>
        Assert.Equal(1002, Failure(Frames.Client(Opcode.Text, "x"u8), Role.Client).ErrorCode);

    [Fact]
    public void Control_frame_over_125_bytes_fails() =>
        Assert.Equal(1002, Failure(Frames.Build(Opcode.Ping, new byte[126])).ErrorCode);

    [Fact]
    public void Fragmented_control_frame_fails() =>
        Assert.Equal(1002, Failure(Frames.Build(Opcode.Ping, "x"u8, fin: false)).ErrorCode);

    [Fact]
    public void Continuation_without_a_message_fails() =>
        Assert.Equal(1002, Failure(Frames.Build(Opcode.Continuation, "x"u8)).ErrorCode);

    [Fact]
    public void New_data_frame_inside_a_message_fails() =>
        Assert.Equal(1002, Failure(Frames.Concat(Frames.Build(Opcode.Text, "a"u8, fin: false), Frames.Build(Opcode.Text, "b"u8))).ErrorCode);

    [Fact]
    public void Invalid_utf8_fails_with_1007_as_soon_as_the_bad_byte_arrives()
    {
        // The first fragment carries the bad byte; the message is never finished, yet it fails.
        var bytes = Frames.Build(Opcode.Text, [0xce, 0xba, 0xed, 0xa0, 0x80], fin: false);
        Assert.Equal(1007, Failure(bytes).ErrorCode);
        // Even inside one frame whose payload has only partly arrived.
        var frame = Frames.Build(Opcode.Text, [(byte)'a', 0xff, .. new byte[1000]]);
        var failure = Decode(frame[..6]).Last(); // 4-byte header, then "a" and 0xff
        Assert.Equal(1007, failure.ErrorCode);
    }

    [Fact]
    public void Text_ending_inside_a_character_fails_with_1007() =>
        Assert.Equal(1007, Failure(Frames.Build(Opcode.Text, [0xe2, 0x82])).ErrorCode);

    [Fact]
    public void Message_over_the_limit_fails_with_1009_on_its_header()
    {
        var header = Frames.Build(Opcode.Binary, new byte[2000])[..4];
        Assert.Equal(1009, Failure(header, max: 1000).ErrorCode);
        var fragments = Frames.Concat(Frames.Build(Opcode.Binary, new byte[600], fin: false), Frames.Build(Opcode.Continuation, new byte[600]));
        Assert.Equal(1009, Failure(fragments, max: 1000).ErrorCode);
        Assert.Equal(ReadEvent.Message, Decode(Frames.Build(Opcode.Binary, new byte[1000]), max: 1000).Single().Kind);
    }

    [Fact]
    public void Invalid_close_payloads_fail()
    {
        Assert.Equal(1002, Failure(Frames.Build(Opcode.Close, [0x03])).ErrorCode);
        Assert.Equal(1002, Failure(Frames.Build(Opcode.Close, Frames.ClosePayload(1005))).ErrorCode);
        Assert.Equal(1007, Failure(Frames.Build(Opcode.Close, [0x03, 0xe8, 0xff])).ErrorCode);
    }

    [Fact]
    public void Nothing_is_read_after_an_error()
    {
        using var reader = new MessageReader(Role.Client, 100);
        reader.Write(Frames.Concat(Frames.Build((Opcode)3, []), Frames.Build(Opcode.Text, "ok"u8)));
        Assert.Equal(ReadEvent.Error, reader.Read());
        Assert.Equal(ReadEvent.Error, reader.Read());
    }

    [Fact]
    public void Allowed_rsv_bits_pass_through_for_extensions()
    {
        using var reader = new MessageReader(Role.Client, 100) { AllowedRsv = FrameHeader.Rsv1 };
        reader.Write(Frames.Build(Opcode.Text, [0xff], rsv: FrameHeader.Rsv1));
        Assert.Equal(ReadEvent.Message, reader.Read());
        Assert.Equal(FrameHeader.Rsv1, reader.MessageRsv);
    }

    [Fact]
    public void Releases_its_buffer_when_idle_and_after_large_messages()
    {
        using var reader = new MessageReader(Role.Client, 1 << 24);
        reader.Write(Frames.Build(Opcode.Binary, new byte[1 << 20]));
        Assert.Equal(ReadEvent.Message, reader.Read());
        Assert.True(reader.BufferCapacity >= 1 << 20);
        Assert.Equal(ReadEvent.NeedMoreData, reader.Read());
        _ = reader.GetMemory();
        Assert.True(reader.BufferCapacity < 1 << 20);
        reader.ReleaseBufferIfIdle();
        Assert.Equal(0, reader.BufferCapacity);
    }

    [Fact]
    public void The_buffer_grows_with_bytes_received_never_with_the_declared_length()
    {
        using var reader = new MessageReader(Role.Server, 16 << 20);
        // A header that declares 16 MiB - 1, then 10 bytes: what an attacker's stalled connection holds.
        var frame = Frames.Client(Opcode.Binary, new byte[(16 << 20) - 1]);
        reader.Write(frame.AsSpan(0, 14 + 10));
        Assert.Equal(ReadEvent.NeedMoreData, reader.Read());
        _ = reader.GetMemory();
        Assert.True(reader.BufferCapacity <= 16 * 1024, $"holds {reader.BufferCapacity} bytes for 24 received");
        // As the bytes really come, it grows to about twice what it holds, and the message arrives whole.
        int at = 24;
        while (at < frame.Length)
        {
            var memory = reader.GetMemory().Span;
            int n = Math.Min(memory.Length, frame.Length - at);
            Assert.True(reader.BufferCapacity <= 2 * at + 64 * 1024, $"{reader.BufferCapacity} bytes held after {at} received");
            frame.AsSpan(at, n).CopyTo(memory);
            reader.Advance(n);
            at += n;
            var ev = reader.Read();
            Assert.Equal(at == frame.Length ? ReadEvent.Message : ReadEvent.NeedMoreData, ev);
        }
        Assert.Equal((16 << 20) - 1, reader.Payload.Length);
    }
}

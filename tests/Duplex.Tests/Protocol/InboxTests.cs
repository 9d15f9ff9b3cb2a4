using System.Text;
using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Tests.Protocol;

/// <summary>The lending rule on its own: a lent payload is never written until the next receive.</summary>
public class InboxTests
{
    private static (MessageReader Reader, Inbox Inbox) Create() { var r = new MessageReader(Role.Server, 1 << 20); return (r, new Inbox(r)); }

    private static ReadOnlyMemory<byte> ReadMessage(MessageReader reader)
    {
        Assert.Equal(ReadEvent.Message, reader.Read());
        return reader.Payload;
    }

    [Fact]
    public void Reading_on_after_a_detach_leaves_the_lent_payload_intact()
    {
        var (reader, inbox) = Create();
        // The lent message, then a close frame and more data already in the same buffer.
        reader.Write(Frames.Concat(Frames.ClientText("lent payload"), Frames.Client(Opcode.Close, Frames.ClosePayload(1000))));
        var lent = ReadMessage(reader);
        inbox.Lend(null);
        inbox.Detach();
        // What a close or keep-alive does next: read more, compact, grow.
        Assert.Equal(ReadEvent.Close, reader.Read());
        for (int i = 0; i < 50; i++)
        {
            reader.Write(Frames.ClientText(new string('x', 1000)));
            Assert.Equal(ReadEvent.NeedMoreData, reader.Read()); // closed: ignored, but bytes were written
        }
        // Whatever the reader gave back to the pool is reused and scribbled on.
        for (int i = 0; i < 64; i++)
            System.Buffers.ArrayPool<byte>.Shared.Rent(4096).AsSpan().Fill(0xAA);
        Assert.Equal("lent payload", Encoding.UTF8.GetString(lent.Span));
        inbox.Reclaim();
    }

    [Fact]
    public void Disposing_gives_a_lent_buffer_to_the_gc_never_back_to_the_pool()
    {
        var (reader, inbox) = Create();
        reader.Write(Frames.ClientText("still mine"));
        var lent = ReadMessage(reader);
        inbox.Lend(null);
        inbox.Dispose();
        // Rent everything the pool has of that size: none of it may be the lent buffer.
        for (int i = 0; i < 64; i++)
        {
            var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(4096);
            rented.AsSpan().Fill(0xAA);
        }
        Assert.Equal("still mine", Encoding.UTF8.GetString(lent.Span));
    }

    [Fact]
    public void Held_messages_are_bounded_and_come_out_oldest_first()
    {
        var (reader, inbox) = Create();
        reader.Write(Frames.Concat(Frames.ClientText("one"), Frames.ClientText("two"), Frames.ClientText("three")));
        Assert.True(inbox.PrepareReadAhead());
        inbox.Hold(Opcode.Text, false, ReadMessage(reader));
        Assert.True(inbox.PrepareReadAhead()); // copies "one" out of the reader
        inbox.Hold(Opcode.Text, false, ReadMessage(reader));
        Assert.True(inbox.IsFull);
        Assert.False(inbox.PrepareReadAhead()); // two wait: read no further
        Assert.True(inbox.TryTakeHeld(out _, out _, out var first, out var copy));
        Assert.Equal("one", Encoding.UTF8.GetString(first.Span));
        Assert.NotNull(copy);
        inbox.Lend(copy);
        Assert.True(inbox.TryTakeHeld(out _, out _, out var second, out var inReader));
        Assert.Equal("two", Encoding.UTF8.GetString(second.Span));
        Assert.Null(inReader);
        Assert.False(inbox.HasHeld);
        inbox.Dispose();
    }
}

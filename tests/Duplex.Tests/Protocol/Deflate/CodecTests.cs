using System.IO.Compression;
using System.Text;
using Duplex.Protocol.Deflate;

namespace Duplex.Tests.Protocol.Deflate;

/// <summary>The zlib codec, checked against the BCL's independent DeflateStream.</summary>
public class CodecTests
{
    private static readonly byte[] Tail = [0x00, 0x00, 0xFF, 0xFF];

    private static byte[] Json(int i) => Encoding.UTF8.GetBytes($"{{\"type\":\"message\",\"channel\":\"lobby\",\"user\":\"ada\",\"offset\":{i},\"text\":\"hello everyone, how are you today?\"}}");

    private static byte[] Take((byte[] Buffer, int Length) result)
    {
        var bytes = result.Buffer.AsSpan(0, result.Length).ToArray();
        System.Buffers.ArrayPool<byte>.Shared.Return(result.Buffer);
        return bytes;
    }

    private static byte[] BclInflate(byte[] compressed)
    {
        using var input = new MemoryStream([.. compressed, .. Tail]);
        using var deflate = new DeflateStream(input, CompressionMode.Decompress);
        var output = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        try
        {
            while ((n = deflate.Read(buffer)) > 0)
                output.Write(buffer, 0, n);
        }
        catch (InvalidDataException)
        {
            // The stream has no final block: DeflateStream may complain at the very end after all data.
        }
        return output.ToArray();
    }

    [Theory]
    [InlineData(9)]
    [InlineData(12)]
    [InlineData(15)]
    public void Compressed_messages_inflate_with_the_bcl_at_every_window(int bits)
    {
        using var deflater = new Deflater(bits, contextTakeover: false);
        foreach (var message in new[] { Json(1), new byte[100_000], Encoding.UTF8.GetBytes(new string('x', 1)) })
        {
            var compressed = Take(deflater.Compress(message));
            Assert.False(compressed.AsSpan().EndsWith(Tail));
            Assert.Equal(message, BclInflate(compressed));
        }
    }

    [Fact]
    public void The_runtimes_zlib_ng_answers_here_so_streams_that_never_reset_use_it()
    {
        // Context takeover deflaters and every inflater use the zlib-ng inside the .NET runtime;
        // if its entry points or stream layout changed, the probe says so and this fails.
        Assert.True(RuntimeZLib.IsAvailable);
    }

    [Theory]
    [InlineData(9)]
    [InlineData(15)]
    public void Messages_compressed_with_context_takeover_inflate_as_one_stream_with_the_bcl(int bits)
    {
        // Each message with its 00 00 FF FF tail put back, one after another, is one DEFLATE
        // stream: what a peer with context takeover inflates.
        using var deflater = new Deflater(bits, contextTakeover: true);
        var messages = Enumerable.Range(0, 30).Select(i => i % 7 == 0 ? new byte[20_000 + i] : Json(i)).ToList();
        var stream = new List<byte>();
        foreach (var message in messages)
            stream.AddRange([.. Take(deflater.Compress(message)), .. Tail]);
        Assert.Equal(messages.SelectMany(m => m).ToArray(), BclInflate([.. stream.Take(stream.Count - 4)]));
    }

    [Fact]
    public void Bcl_deflate_output_inflates_here()
    {
        var message = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("the quick brown fox ", 500)));
        var stream = new MemoryStream();
        using (var deflate = new DeflateStream(stream, CompressionLevel.Optimal, leaveOpen: true))
        {
            deflate.Write(message);
            deflate.Flush(); // sync flush: ends with 00 00 FF FF
        }
        var bytes = stream.ToArray();
        int end = bytes.AsSpan().LastIndexOf(Tail);
        using var inflater = new Inflater(15, contextTakeover: false);
        Assert.Equal(InflateStatus.Ok, inflater.Decompress(bytes.AsSpan(0, end), 1 << 20, out var buffer, out int length));
        Assert.Equal(message, buffer.AsSpan(0, length).ToArray());
    }

    [Fact]
    public void Context_takeover_shrinks_repeated_messages_and_still_round_trips_in_order()
    {
        using var keep = new Deflater(15, contextTakeover: true);
        using var reset = new Deflater(15, contextTakeover: false);
        using var inflater = new Inflater(15, contextTakeover: true);
        int kept = 0, plain = 0;
        for (int i = 0; i < 20; i++)
        {
            var message = Json(i);
            var a = Take(keep.Compress(message));
            var b = Take(reset.Compress(message));
            if (i > 0)
            {
                kept += a.Length;
                plain += b.Length;
            }
            Assert.Equal(InflateStatus.Ok, inflater.Decompress(a, 1 << 20, out var buffer, out int length));
            Assert.Equal(message, buffer.AsSpan(0, length).ToArray());
        }
        Assert.True(kept * 3 < plain, $"with takeover {kept} bytes, without {plain}");
    }

    [Fact]
    public void Without_takeover_each_message_stands_alone()
    {
        using var deflater = new Deflater(15, contextTakeover: false);
        var first = Take(deflater.Compress(Json(1)));
        var second = Take(deflater.Compress(Json(1)));
        Assert.Equal(first, second);
        using var fresh = new Inflater(15, contextTakeover: false);
        Assert.Equal(InflateStatus.Ok, fresh.Decompress(second, 1 << 20, out var buffer, out int length));
        Assert.Equal(Json(1), buffer.AsSpan(0, length).ToArray());
    }

    [Fact]
    public void A_message_compressed_in_fragments_inflates_whole()
    {
        var message = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 2000).Select(i => $"item {i}; ")));
        using var deflater = new Deflater(15, contextTakeover: false);
        var parts = new List<byte>();
        for (int at = 0; at < message.Length; at += 3000)
        {
            bool last = at + 3000 >= message.Length;
            parts.AddRange(Take(deflater.Compress(message.AsSpan(at, Math.Min(3000, message.Length - at)), final: last)));
        }
        using var inflater = new Inflater(15, contextTakeover: false);
        Assert.Equal(InflateStatus.Ok, inflater.Decompress(parts.ToArray(), 1 << 20, out var buffer, out int length));
        Assert.Equal(message, buffer.AsSpan(0, length).ToArray());
    }

    [Fact]
    public void Empty_message_round_trips()
    {
        using var deflater = new Deflater(15, contextTakeover: false);
        var compressed = Take(deflater.Compress([]));
        using var inflater = new Inflater(15, contextTakeover: false);
        Assert.Equal(InflateStatus.Ok, inflater.Decompress(compressed, 100, out _, out int length));
        Assert.Equal(0, length);
    }

    [Fact]
    public void A_decompression_bomb_stops_at_the_limit()
    {
        using var deflater = new Deflater(15, contextTakeover: false);
        var bomb = Take(deflater.Compress(new byte[64 << 20])); // 64 MiB of zeros: about 64 KiB compressed
        Assert.True(bomb.Length < 100_000);
        using var inflater = new Inflater(15, contextTakeover: false);
        Assert.Equal(InflateStatus.TooBig, inflater.Decompress(bomb, 1 << 20, out var buffer, out int length));
        Assert.True(buffer.Length <= 2 << 20, $"buffer grew to {buffer.Length}");
        Assert.True(length > 1 << 20);
    }

    [Fact]
    public void Garbage_is_invalid_data()
    {
        using var inflater = new Inflater(15, contextTakeover: false);
        Assert.Equal(InflateStatus.Invalid, inflater.Decompress([0xFF, 0xFF, 0xFF, 0x12, 0x34], 1000, out _, out _));
    }
}

using System.Buffers;
using Duplex.Protocol;

namespace Duplex.Tests.Protocol;

public class FrameHeaderTests
{
    [Fact]
    public void Reads_the_rfc_unmasked_hello_header()
    {
        byte[] frame = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        Assert.Equal(OperationStatus.Done, FrameHeader.TryRead(frame, out var header, out int length));
        Assert.Equal(2, length);
        Assert.True(header.Fin);
        Assert.Equal(Opcode.Text, header.Opcode);
        Assert.False(header.Masked);
        Assert.Equal(5, header.PayloadLength);
    }

    [Fact]
    public void Reads_the_rfc_masked_hello_header()
    {
        byte[] frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        Assert.Equal(OperationStatus.Done, FrameHeader.TryRead(frame, out var header, out int length));
        Assert.Equal(6, length);
        Assert.True(header.Masked);
        var payload = frame[6..];
        Masking.Apply(payload, header.MaskKey);
        Assert.Equal("Hello"u8.ToArray(), payload);
    }

    [Theory]
    [InlineData(0, 2)]
    [InlineData(125, 2)]
    [InlineData(126, 4)]
    [InlineData(256, 4)]
    [InlineData(65535, 4)]
    [InlineData(65536, 10)]
    [InlineData(int.MaxValue + 10L, 10)]
    public void Writes_the_shortest_length_encoding_and_reads_it_back(long payloadLength, int expectedHeader)
    {
        var buffer = new byte[FrameHeader.MaxLength];
        int written = FrameHeader.Write(buffer, true, 0, Opcode.Binary, payloadLength, null);
        Assert.Equal(expectedHeader, written);
        Assert.Equal(written, FrameHeader.GetLength(payloadLength, masked: false));
        Assert.Equal(OperationStatus.Done, FrameHeader.TryRead(buffer.AsSpan(0, written), out var header, out int read));
        Assert.Equal(written, read);
        Assert.Equal(payloadLength, header.PayloadLength);
        Assert.Equal(Opcode.Binary, header.Opcode);
    }

    [Fact]
    public void Rfc_256_byte_binary_header_uses_16_bit_length()
    {
        var buffer = new byte[14];
        int n = FrameHeader.Write(buffer, true, 0, Opcode.Binary, 256, null);
        Assert.Equal(new byte[] { 0x82, 0x7E, 0x01, 0x00 }, buffer[..n]);
    }

    [Fact]
    public void Rfc_64KiB_binary_header_uses_64_bit_length()
    {
        var buffer = new byte[14];
        int n = FrameHeader.Write(buffer, true, 0, Opcode.Binary, 65536, null);
        Assert.Equal(new byte[] { 0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 }, buffer[..n]);
    }

    [Fact]
    public void Accepts_non_minimal_length_encodings()
    {
        byte[] frame = [0x82, 0x7E, 0x00, 0x05];
        Assert.Equal(OperationStatus.Done, FrameHeader.TryRead(frame, out var header, out _));
        Assert.Equal(5, header.PayloadLength);
    }

    [Fact]
    public void Rejects_a_64_bit_length_with_the_top_bit_set()
    {
        byte[] frame = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1];
        Assert.Equal(OperationStatus.InvalidData, FrameHeader.TryRead(frame, out _, out _));
    }

    [Fact]
    public void Asks_for_more_data_at_every_prefix()
    {
        var buffer = new byte[14];
        int n = FrameHeader.Write(buffer, true, 0, Opcode.Text, 70000, 0x11223344u);
        for (int i = 0; i < n; i++)
            Assert.Equal(OperationStatus.NeedMoreData, FrameHeader.TryRead(buffer.AsSpan(0, i), out _, out _));
    }

    [Fact]
    public void Keeps_rsv_bits_and_mask_key()
    {
        var buffer = new byte[14];
        int n = FrameHeader.Write(buffer, false, FrameHeader.Rsv1 | FrameHeader.Rsv3, Opcode.Continuation, 3, 0xA1B2C3D4u);
        FrameHeader.TryRead(buffer.AsSpan(0, n), out var header, out _);
        Assert.False(header.Fin);
        Assert.Equal(FrameHeader.Rsv1 | FrameHeader.Rsv3, header.Rsv);
        Assert.Equal(0xA1B2C3D4u, header.MaskKey);
    }
}

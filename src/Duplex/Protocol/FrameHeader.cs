using System.Buffers;
using System.Buffers.Binary;

namespace Duplex.Protocol;

/// <summary>The fixed part of a frame (RFC 6455 §5.2): read from and written to raw bytes.</summary>
internal readonly record struct FrameHeader(bool Fin, byte Rsv, Opcode Opcode, bool Masked, uint MaskKey, long PayloadLength)
{
    /// <summary>RSV1, RSV2 and RSV3 as they sit in the first byte (0x40, 0x20, 0x10).</summary>
    public const byte Rsv1 = 0x40, Rsv2 = 0x20, Rsv3 = 0x10;

    /// <summary>The longest header: 2 bytes, a 64-bit length and a 4-byte mask key.</summary>
    public const int MaxLength = 14;

    /// <summary>Length of the header that <see cref="Write"/> produces for this payload.</summary>
    public static int GetLength(long payloadLength, bool masked) =>
        (payloadLength <= 125 ? 2 : payloadLength <= ushort.MaxValue ? 4 : 10) + (masked ? 4 : 0);

    /// <summary>
    /// Reads a header from the start of <paramref name="source"/>. Minimal length encoding is not
    /// required of the peer, but a 64-bit length with its top bit set is invalid.
    /// </summary>
    /// <returns><see cref="OperationStatus.NeedMoreData"/> until the whole header is there.</returns>
    public static OperationStatus TryRead(ReadOnlySpan<byte> source, out FrameHeader header, out int headerLength)
    {
        header = default;
        headerLength = 0;
        if (source.Length < 2)
            return OperationStatus.NeedMoreData;
        byte b0 = source[0], b1 = source[1];
        bool masked = (b1 & 0x80) != 0;
        int length7 = b1 & 0x7F;
        int size = 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + (masked ? 4 : 0);
        if (source.Length < size)
            return OperationStatus.NeedMoreData;
        long payloadLength = length7;
        int at = 2;
        if (length7 == 126)
        {
            payloadLength = BinaryPrimitives.ReadUInt16BigEndian(source[2..]);
            at = 4;
        }
        else if (length7 == 127)
        {
            ulong length64 = BinaryPrimitives.ReadUInt64BigEndian(source[2..]);
            if (length64 > long.MaxValue)
                return OperationStatus.InvalidData;
            payloadLength = (long)length64;
            at = 10;
        }
        // The key is kept in wire order: byte 0 of the key in the low byte on a little-endian CPU.
        uint mask = masked ? BitConverter.ToUInt32(source.Slice(at, 4)) : 0;
        header = new FrameHeader((b0 & 0x80) != 0, (byte)(b0 & 0x70), (Opcode)(b0 & 0x0F), masked, mask, payloadLength);
        headerLength = size;
        return OperationStatus.Done;
    }

    /// <summary>Writes a header with the shortest length encoding; returns the bytes written.</summary>
    public static int Write(Span<byte> destination, bool fin, byte rsv, Opcode opcode, long payloadLength, uint? maskKey)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        destination[0] = (byte)((fin ? 0x80 : 0) | (rsv & 0x70) | ((byte)opcode & 0x0F));
        byte maskBit = maskKey.HasValue ? (byte)0x80 : (byte)0;
        int at;
        if (payloadLength <= 125)
        {
            destination[1] = (byte)(maskBit | (byte)payloadLength);
            at = 2;
        }
        else if (payloadLength <= ushort.MaxValue)
        {
            destination[1] = (byte)(maskBit | 126);
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payloadLength);
            at = 4;
        }
        else
        {
            destination[1] = (byte)(maskBit | 127);
            BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payloadLength);
            at = 10;
        }
        if (maskKey is uint key)
        {
            BitConverter.TryWriteBytes(destination.Slice(at, 4), key);
            at += 4;
        }
        return at;
    }
}

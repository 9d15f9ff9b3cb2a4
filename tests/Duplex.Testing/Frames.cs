using System.Buffers.Binary;
using System.Text;
using Duplex.Protocol;

namespace Duplex.Testing;

/// <summary>Builds raw frames, valid or not, byte by byte, so tests can send what a bad peer would.</summary>
public static class Frames
{
    /// <summary>A frame with full control of every bit. The mask key is applied when given.</summary>
    public static byte[] Build(Opcode opcode, ReadOnlySpan<byte> payload, bool fin = true, byte rsv = 0, byte[]? mask = null,
        int? forceLengthBytes = null)
    {
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | rsv | (byte)opcode) };
        byte maskBit = mask is null ? (byte)0 : (byte)0x80;
        int lengthBytes = forceLengthBytes ?? (payload.Length <= 125 ? 0 : payload.Length <= 65535 ? 2 : 8);
        if (lengthBytes == 0)
        {
            frame.Add((byte)(maskBit | payload.Length));
        }
        else if (lengthBytes == 2)
        {
            frame.Add((byte)(maskBit | 126));
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }
        else
        {
            frame.Add((byte)(maskBit | 127));
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            frame.AddRange(length.ToArray());
        }
        if (mask is not null)
            frame.AddRange(mask);
        for (int i = 0; i < payload.Length; i++)
            frame.Add(mask is null ? payload[i] : (byte)(payload[i] ^ mask[i % 4]));
        return [.. frame];
    }

    public static readonly byte[] TestMask = [0x37, 0xfa, 0x21, 0x3d];

    /// <summary>A frame as a client sends it (masked).</summary>
    public static byte[] Client(Opcode opcode, ReadOnlySpan<byte> payload, bool fin = true, byte rsv = 0) =>
        Build(opcode, payload, fin, rsv, TestMask);

    public static byte[] ClientText(string text, bool fin = true) => Client(Opcode.Text, Encoding.UTF8.GetBytes(text), fin);

    public static byte[] ClosePayload(int code, string reason = "")
    {
        var bytes = new byte[2 + Encoding.UTF8.GetByteCount(reason)];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, (ushort)code);
        Encoding.UTF8.GetBytes(reason, bytes.AsSpan(2));
        return bytes;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}

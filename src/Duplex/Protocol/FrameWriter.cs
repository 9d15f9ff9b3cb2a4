using System.Security.Cryptography;

namespace Duplex.Protocol;

/// <summary>Builds frames for sending: header, then the payload, masked when a key is given.</summary>
internal static class FrameWriter
{
    /// <summary>Writes a whole frame to <paramref name="destination"/>; returns the bytes written.</summary>
    public static int WriteFrame(Span<byte> destination, Opcode opcode, bool fin, byte rsv, ReadOnlySpan<byte> payload, uint? maskKey)
    {
        int header = FrameHeader.Write(destination, fin, rsv, opcode, payload.Length, maskKey);
        var body = destination.Slice(header, payload.Length);
        if (maskKey is uint key)
            Masking.ApplyCopy(payload, body, key);
        else
            payload.CopyTo(body);
        return header + payload.Length;
    }

    /// <summary>The size of a whole frame for this payload.</summary>
    public static int GetFrameLength(int payloadLength, bool masked) =>
        FrameHeader.GetLength(payloadLength, masked) + payloadLength;
}

/// <summary>
/// Mask keys for a client (§5.3 asks for strong, unpredictable keys): drawn from the system's
/// cryptographic generator in blocks, so a frame costs four bytes of a buffer, not a system call.
/// Not thread-safe: each connection has its own and uses it under its send lock.
/// </summary>
internal sealed class MaskKeySource
{
    private readonly byte[] _block = new byte[256];
    private int _next = 256;

    public uint Next()
    {
        if (_next == _block.Length)
        {
            RandomNumberGenerator.Fill(_block);
            _next = 0;
        }
        uint key = BitConverter.ToUInt32(_block, _next);
        _next += 4;
        return key;
    }
}

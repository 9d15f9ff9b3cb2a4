using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Duplex.Protocol;

namespace Duplex.Testing;

/// <summary>A frame as read off the wire by a test peer, unmasked.</summary>
public sealed record RawFrame(bool Fin, byte Rsv, Opcode Opcode, bool Masked, byte[] Payload)
{
    public string Text => Encoding.UTF8.GetString(Payload);

    public int CloseCode => Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : 1005;

    public string CloseReason => Payload.Length > 2 ? Encoding.UTF8.GetString(Payload, 2, Payload.Length - 2) : "";

    /// <summary>Reads one frame from a stream; null at end of stream.</summary>
    public static async Task<RawFrame?> ReadAsync(Stream stream, CancellationToken cancellationToken = default)
    {
        var head = new byte[14];
        if (!await FillAsync(stream, head.AsMemory(0, 2), cancellationToken))
            return null;
        int length7 = head[1] & 0x7F;
        bool masked = (head[1] & 0x80) != 0;
        int extra = (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + (masked ? 4 : 0);
        if (extra > 0 && !await FillAsync(stream, head.AsMemory(2, extra), cancellationToken))
            throw new EndOfStreamException("frame header cut short");
        var status = FrameHeader.TryRead(head.AsSpan(0, 2 + extra), out var header, out _);
        if (status != OperationStatus.Done)
            throw new InvalidDataException("bad frame header");
        var payload = new byte[header.PayloadLength];
        if (payload.Length > 0 && !await FillAsync(stream, payload, cancellationToken))
            throw new EndOfStreamException("frame payload cut short");
        if (header.Masked)
            Masking.Apply(payload, header.MaskKey);
        return new RawFrame(header.Fin, header.Rsv, header.Opcode, header.Masked, payload);
    }

    private static async Task<bool> FillAsync(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int filled = 0;
        while (filled < buffer.Length)
        {
            int n = await stream.ReadAsync(buffer[filled..], cancellationToken);
            if (n == 0)
            {
                if (filled == 0)
                    return false;
                throw new EndOfStreamException("stream ended inside a frame");
            }
            filled += n;
        }
        return true;
    }

    public override string ToString() => $"{Opcode} fin={Fin} rsv={Rsv} masked={Masked} len={Payload.Length}";
}

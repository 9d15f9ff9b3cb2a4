using System.Buffers.Binary;
using System.Text;

namespace Duplex.Protocol;

/// <summary>The payload of a close frame (RFC 6455 §5.5.1, §7.4): a status code and a UTF-8 reason.</summary>
internal static class CloseFrame
{
    /// <summary>A control frame's payload is at most 125 bytes, so the reason at most 123.</summary>
    public const int MaxReasonBytes = 123;

    /// <summary>
    /// Reads a received close payload. An empty payload means no status (reported as 1005);
    /// one byte, a code that may not be sent, or a reason that is not UTF-8 is a protocol error.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> payload, out CloseStatus status, out string reason, out ProtocolError error)
    {
        status = CloseStatus.NoStatusReceived;
        reason = "";
        error = default;
        if (payload.Length == 0)
            return true;
        if (payload.Length == 1)
        {
            error = ProtocolError.Protocol("close frame with a 1-byte payload");
            return false;
        }
        int code = BinaryPrimitives.ReadUInt16BigEndian(payload);
        if (!CloseStatusRules.IsValidOnWire(code))
        {
            error = ProtocolError.Protocol($"invalid close code {code}");
            return false;
        }
        ReadOnlySpan<byte> text = payload[2..];
        if (!Utf8Validator.IsValid(text))
        {
            error = ProtocolError.InvalidUtf8("close reason is not valid UTF-8");
            return false;
        }
        status = (CloseStatus)code;
        reason = text.IsEmpty ? "" : Encoding.UTF8.GetString(text);
        return true;
    }

    /// <summary>
    /// Writes a close payload for sending. <see cref="CloseStatus.NoStatusReceived"/> writes an
    /// empty payload; other codes must be valid on the wire and the reason at most 123 UTF-8 bytes.
    /// </summary>
    public static int Write(Span<byte> destination, CloseStatus status, string? reason)
    {
        if (status == CloseStatus.NoStatusReceived)
        {
            if (!string.IsNullOrEmpty(reason))
                throw new ArgumentException("A close without a status cannot carry a reason.", nameof(reason));
            return 0;
        }
        if (!CloseStatusRules.IsValidOnWire((int)status))
            throw new ArgumentOutOfRangeException(nameof(status), (int)status, "This close code may not be sent.");
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)status);
        if (string.IsNullOrEmpty(reason))
            return 2;
        if (Encoding.UTF8.GetByteCount(reason) > MaxReasonBytes)
            throw new ArgumentException($"A close reason is at most {MaxReasonBytes} UTF-8 bytes.", nameof(reason));
        return 2 + Encoding.UTF8.GetBytes(reason, destination[2..]);
    }

    /// <summary>Shortens a reason of ours to fit a close frame, on a character boundary.</summary>
    public static string Truncate(string reason)
    {
        if (Encoding.UTF8.GetByteCount(reason) <= MaxReasonBytes)
            return reason;
        int length = Math.Min(reason.Length, MaxReasonBytes);
        while (length > 0 && Encoding.UTF8.GetByteCount(reason.AsSpan(0, length)) > MaxReasonBytes)
            length--;
        if (length > 0 && char.IsHighSurrogate(reason[length - 1]))
            length--;
        return reason[..length];
    }
}

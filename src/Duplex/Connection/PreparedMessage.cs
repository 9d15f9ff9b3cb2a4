using System.Collections.Concurrent;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;

namespace Duplex;

/// <summary>
/// A message framed once for many receivers, for broadcast from a server: every connection gets
/// the same frame bytes (server frames are not masked). For connections that compress without
/// context takeover, the message is also compressed once per window size and shared; a
/// connection that keeps context compresses it itself, since its window differs from all others.
/// </summary>
public sealed class PreparedMessage
{
    // One buffer: the plain frame, whose tail is the payload (server frames are not masked).
    private readonly byte[] _plainFrame;
    private readonly int _headerLength;
    private readonly ConcurrentDictionary<(int Bits, int Level, int MemoryLevel), byte[]> _compressedFrames = new();
    private int _compressions;

    private PreparedMessage(ReadOnlySpan<byte> payload, MessageType type)
    {
        Type = type;
        _headerLength = FrameHeader.GetLength(payload.Length, masked: false);
        _plainFrame = new byte[_headerLength + payload.Length];
        FrameWriter.WriteFrame(_plainFrame, (Opcode)type, true, 0, payload, null);
    }

    /// <summary>Copies the payload (once: the frame is built around the copy); text must be valid UTF-8.</summary>
    public static PreparedMessage Create(ReadOnlySpan<byte> payload, MessageType type)
    {
        if (type is not (MessageType.Text or MessageType.Binary))
            throw new ArgumentOutOfRangeException(nameof(type));
        if (type == MessageType.Text && !Utf8Validator.IsValid(payload))
            throw new ArgumentException("Text messages must be valid UTF-8.", nameof(payload));
        return new PreparedMessage(payload, type);
    }

    /// <summary>A text message from a string, encoded as UTF-8 once.</summary>
    public static PreparedMessage CreateText(string text) => new(System.Text.Encoding.UTF8.GetBytes(text), MessageType.Text);

    /// <summary>Text or binary.</summary>
    public MessageType Type { get; }

    /// <summary>The message's payload, as it was given (uncompressed).</summary>
    public ReadOnlyMemory<byte> Payload => _plainFrame.AsMemory(_headerLength);

    /// <summary>The bytes this message holds (its frame, and any compressed frames made for it).</summary>
    public long MemorySize
    {
        get
        {
            long size = _plainFrame.Length;
            foreach (var frame in _compressedFrames.Values)
                size += frame.Length;
            return size;
        }
    }

    /// <summary>How many times the payload was compressed (once per window size, whatever the number of receivers).</summary>
    internal int CompressionCount => Volatile.Read(ref _compressions);

    internal byte[] PlainFrame => _plainFrame;

    internal byte[] CompressedFrame(int bits, int level, int memoryLevel) =>
        _compressedFrames.GetOrAdd((bits, level, memoryLevel), static (key, self) =>
        {
            Interlocked.Increment(ref self._compressions);
            var deflater = CodecPool.RentDeflater(key.Bits, key.Level, key.MemoryLevel);
            try
            {
                var (buffer, length) = deflater.Compress(self.Payload.Span);
                try
                {
                    return self.Frame(buffer.AsSpan(0, length), FrameHeader.Rsv1);
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
            }
            finally
            {
                CodecPool.Return(deflater, key.Bits, key.Level, key.MemoryLevel);
            }
        }, this);

    private byte[] Frame(ReadOnlySpan<byte> payload, byte rsv)
    {
        var frame = new byte[FrameWriter.GetFrameLength(payload.Length, masked: false)];
        FrameWriter.WriteFrame(frame, (Opcode)Type, true, rsv, payload, null);
        return frame;
    }
}

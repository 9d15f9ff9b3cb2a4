using System.Buffers;
using static Duplex.Protocol.Deflate.ZLib;

namespace Duplex.Protocol.Deflate;

/// <summary>
/// Compresses messages for permessage-deflate (RFC 7692 §7.2.1): raw DEFLATE, each message ended
/// with a sync flush whose 00 00 FF FF tail is removed. With context takeover the window carries
/// over from message to message; without, the stream is reset after each one.
/// Memory: about 2^(windowBits+2) + 2^(memLevel+9) bytes of zlib state while it exists.
/// </summary>
internal sealed unsafe class Deflater : IDisposable
{
    private NativeStream? _stream;
    private readonly bool _takeover;

    public Deflater(int windowBits, bool contextTakeover, int level = 6, int memLevel = 8)
    {
        if (windowBits is < 9 or > 15)
            throw new ArgumentOutOfRangeException(nameof(windowBits), "zlib's raw deflate takes 9 to 15 window bits.");
        _takeover = contextTakeover;
        _stream = NativeStream.ForDeflate(level, windowBits, memLevel, resets: !contextTakeover)
            ?? throw new InvalidOperationException("zlib could not start a deflate stream.");
    }

    /// <summary>
    /// Compresses one whole message (or, with <paramref name="final"/> false, one fragment of it)
    /// into a pooled buffer; returns the buffer and the compressed length. Return the buffer to
    /// <see cref="ArrayPool{T}.Shared"/> after use.
    /// </summary>
    public (byte[] Buffer, int Length) Compress(ReadOnlySpan<byte> input, bool final = true)
    {
        ObjectDisposedException.ThrowIf(_stream is null, this);
        byte[] output = ArrayPool<byte>.Shared.Rent(input.Length + input.Length / 16 + 64);
        int written = 0;
        fixed (byte* source = input)
        {
            _stream.NextIn = source;
            _stream.AvailIn = (uint)input.Length;
            while (true)
            {
                if (written == output.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(output.Length * 2);
                    output.AsSpan(0, written).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(output);
                    output = bigger;
                }
                fixed (byte* target = &output[written])
                {
                    _stream.NextOut = target;
                    _stream.AvailOut = (uint)(output.Length - written);
                    int status = _stream.Run(SyncFlush);
                    written = output.Length - (int)_stream.AvailOut;
                    if (status is not (Ok or BufError))
                        throw new InvalidOperationException($"zlib deflate failed ({status}).");
                }
                // Done when all input is taken and the flush fit (space was left over).
                if (_stream.AvailIn == 0 && _stream.AvailOut != 0)
                    break;
            }
        }
        _stream.NextIn = null;
        _stream.NextOut = null;
        if (final)
        {
            // §7.2.1: remove the 00 00 FF FF that the sync flush ends with.
            if (written >= 4 && output.AsSpan(written - 4, 4).SequenceEqual(SyncTail))
                written -= 4;
            if (!_takeover)
                _stream.Reset();
        }
        return (output, written);
    }

    internal static ReadOnlySpan<byte> SyncTail => [0x00, 0x00, 0xFF, 0xFF];

    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
    }
}

/// <summary>
/// Decompresses permessage-deflate messages: appends the 00 00 FF FF tail the sender removed,
/// inflates, and stops with <see cref="InflateStatus.TooBig"/> as soon as the output passes the
/// limit, so a small compressed message cannot expand into unbounded memory.
/// </summary>
internal sealed unsafe class Inflater : IDisposable
{
    private NativeStream? _stream;
    private readonly bool _takeover;

    public Inflater(int windowBits, bool contextTakeover)
    {
        if (windowBits is < 8 or > 15)
            throw new ArgumentOutOfRangeException(nameof(windowBits));
        _takeover = contextTakeover;
        _stream = NativeStream.ForInflate(windowBits)
            ?? throw new InvalidOperationException("zlib could not start an inflate stream.");
    }

    /// <summary>
    /// Inflates one whole message into a pooled buffer (return it to the shared pool after use).
    /// </summary>
    public InflateStatus Decompress(ReadOnlySpan<byte> input, long limit, out byte[] buffer, out int length)
    {
        ObjectDisposedException.ThrowIf(_stream is null, this);
        buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit + 1, Math.Max(256, (long)input.Length * 4)));
        length = 0;
        var status = Inflate(input, limit, ref buffer, ref length);
        if (status == InflateStatus.Ok)
            status = Inflate(Deflater.SyncTail, limit, ref buffer, ref length);
        if (status == InflateStatus.Ok && !_takeover)
            _stream.Reset();
        return status;
    }

    private InflateStatus Inflate(ReadOnlySpan<byte> input, long limit, ref byte[] buffer, ref int length)
    {
        var stream = _stream!;
        fixed (byte* source = input)
        {
            stream.NextIn = source;
            stream.AvailIn = (uint)input.Length;
            try
            {
                while (true)
                {
                    if (length == buffer.Length)
                    {
                        if (length > limit)
                            return InflateStatus.TooBig;
                        var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit + 1, (long)buffer.Length * 2));
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    fixed (byte* target = &buffer[length])
                    {
                        stream.NextOut = target;
                        stream.AvailOut = (uint)(buffer.Length - length);
                        int status = stream.Run(SyncFlush);
                        length = buffer.Length - (int)stream.AvailOut;
                        if (length > limit)
                            return InflateStatus.TooBig;
                        if (status is DataError or NeedDict or < BufError)
                            return InflateStatus.Invalid;
                        if (status == StreamEnd)
                        {
                            // The sender ended a block with BFINAL set: start a fresh stream for what follows.
                            stream.Reset();
                            if (stream.AvailIn == 0)
                                return InflateStatus.Ok;
                            continue;
                        }
                        if (status == BufError && stream.AvailOut != 0)
                            return InflateStatus.Ok; // no progress possible: all input is used
                    }
                    if (stream.AvailIn == 0 && stream.AvailOut != 0)
                        return InflateStatus.Ok;
                }
            }
            finally
            {
                stream.NextIn = null;
                stream.NextOut = null;
            }
        }
    }

    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
    }
}

internal enum InflateStatus
{
    Ok,
    /// <summary>The output passed the limit: fail with 1009.</summary>
    TooBig,
    /// <summary>Not valid DEFLATE data: fail with 1007.</summary>
    Invalid,
}

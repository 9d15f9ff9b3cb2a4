using System.Buffers;

namespace Duplex.Protocol;

/// <summary>
/// Bytes waiting to be written: frames are gathered here and go to the transport in one write.
/// Rented while it holds bytes and returned once they are written, so an idle connection holds
/// none. It grows with what the application sends (never with what a peer declares).
/// Not thread-safe: the send half of one connection uses it under its send lock.
/// </summary>
internal sealed class OutputBuffer
{
    private const int MinimumSize = 4096;

    private byte[]? _buffer;
    private int _length;

    /// <summary>The bytes gathered so far.</summary>
    public ReadOnlyMemory<byte> Pending => _buffer is null ? default : _buffer.AsMemory(0, _length);

    public int Length => _length;

    /// <summary>Room for <paramref name="size"/> more bytes; call <see cref="Advance"/> with what was written.</summary>
    public Span<byte> GetSpan(int size)
    {
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(MinimumSize, size));
        }
        else if (_buffer.Length - _length < size)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + size));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        return _buffer.AsSpan(_length);
    }

    public void Advance(int count) => _length += count;

    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        _length += bytes.Length;
    }

    /// <summary>After the pending bytes were written (or will never be): empties and frees the buffer.</summary>
    public void Clear()
    {
        var buffer = _buffer;
        _buffer = null;
        _length = 0;
        if (buffer is not null)
            ArrayPool<byte>.Shared.Return(buffer);
    }
}

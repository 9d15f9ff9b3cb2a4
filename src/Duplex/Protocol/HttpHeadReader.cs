using System.Buffers;

namespace Duplex.Protocol;

/// <summary>
/// Reads one HTTP/1.1 head as bytes arrive, for both roles (a server reads requests, a client
/// the 101 response), with no I/O: fill <see cref="GetMemory"/>, call <see cref="Advance"/>, then
/// <see cref="TryReadRequest"/> or <see cref="TryReadResponse"/>. The buffer starts small (most
/// upgrade requests fit in 1 KiB) and grows with the bytes that came, up to the head limit.
/// Bytes past the head belong to the first frames: <see cref="Leftover"/>.
/// </summary>
internal sealed class HttpHeadReader(HttpHeadLimits limits, int initialSize = 1024) : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(initialSize, limits.MaxHeadBytes + 1));
    private int _filled;
    private int _consumed;

    /// <summary>Room for more bytes: at least one, never past the head limit (+1, to tell "too large").</summary>
    public Memory<byte> GetMemory()
    {
        int cap = limits.MaxHeadBytes + 1;
        if (_filled == _buffer.Length && _buffer.Length < cap)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 4, cap));
            _buffer.AsSpan(0, _filled).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        return _buffer.AsMemory(_filled, Math.Max(1, Math.Min(_buffer.Length, cap) - _filled));
    }

    public void Advance(int count) => _filled += count;

    public OperationStatus TryReadRequest(out HttpRequestHead? head, out HttpHeadError error) =>
        HttpHeadParser.TryParseRequest(_buffer.AsSpan(0, _filled), limits, out head, out _consumed, out error);

    public OperationStatus TryReadResponse(out HttpResponseHead? head, out HttpHeadError error) =>
        HttpHeadParser.TryParseResponse(_buffer.AsSpan(0, _filled), limits, out head, out _consumed, out error);

    /// <summary>After a head was read: the bytes that came after it.</summary>
    public ReadOnlySpan<byte> Leftover => _buffer.AsSpan(_consumed, _filled - _consumed);

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        if (buffer.Length > 0)
            ArrayPool<byte>.Shared.Return(buffer);
    }
}

namespace Duplex.Protocol.Deflate;

/// <summary>The compression settings a connection uses once permessage-deflate is agreed.</summary>
internal readonly record struct DeflateSettings(int Threshold, int Level, int MemoryLevel);

/// <summary>
/// permessage-deflate (RFC 7692) for one connection. A side that keeps context holds its own
/// zlib stream, made at its first compressed message; a side without context takeover borrows
/// one from <see cref="CodecPool"/> for each message, so an idle connection holds none.
/// The send half (Compress, DisposeSender) is used by one sender at a time, the receive half
/// (Decompress, DisposeReceiver) by one receiver at a time; the halves share nothing mutable.
/// </summary>
internal sealed class PerMessageDeflate(DeflateParameters parameters, DeflateSettings settings, Role role, long maxMessageSize)
{
    private Deflater? _deflater;            // only with our context takeover
    private Deflater? _streamingDeflater;   // a pooled one, kept from a streamed message's first fragment to its last
    private Inflater? _inflater;            // only with the peer's context takeover

    public DeflateParameters Parameters => parameters;

    public bool ShouldCompress(int length) => length >= settings.Threshold;

    /// <summary>
    /// For a message framed once for many connections: the key of the shared compressed frame
    /// this connection can use, or null when it keeps context and must compress for itself.
    /// </summary>
    public (int Bits, int Level, int MemoryLevel)? SharedFrameKey
    {
        get
        {
            var (bits, takeover) = parameters.Sender(role);
            return takeover ? null : (bits, settings.Level, settings.MemoryLevel);
        }
    }

    /// <summary>Compresses a message, or a fragment of a streamed one (final on its last), into a pooled buffer.</summary>
    public (byte[] Buffer, int Length) Compress(ReadOnlySpan<byte> payload, bool final)
    {
        var (bits, takeover) = parameters.Sender(role);
        if (takeover)
        {
            _deflater ??= new Deflater(bits, contextTakeover: true, settings.Level, settings.MemoryLevel);
            return _deflater.Compress(payload, final);
        }
        var deflater = _streamingDeflater ?? CodecPool.RentDeflater(bits, settings.Level, settings.MemoryLevel);
        _streamingDeflater = null;
        try
        {
            return deflater.Compress(payload, final);
        }
        finally
        {
            if (final)
                CodecPool.Return(deflater, bits, settings.Level, settings.MemoryLevel);
            else
                _streamingDeflater = deflater;
        }
    }

    /// <summary>Inflates a received compressed message into a pooled buffer, within the size limit.</summary>
    public InflateStatus Decompress(ReadOnlySpan<byte> payload, out byte[] buffer, out int length)
    {
        var (bits, takeover) = parameters.Receiver(role);
        if (takeover)
        {
            _inflater ??= new Inflater(bits, contextTakeover: true);
            return _inflater.Decompress(payload, maxMessageSize, out buffer, out length);
        }
        var pooled = CodecPool.RentInflater(bits);
        try
        {
            return pooled.Decompress(payload, maxMessageSize, out buffer, out length);
        }
        finally
        {
            CodecPool.Return(pooled, bits);
        }
    }

    public void DisposeSender()
    {
        _deflater?.Dispose();
        _deflater = null;
        _streamingDeflater?.Dispose(); // a streamed message cut short: its stream is not reusable
        _streamingDeflater = null;
    }

    public void DisposeReceiver()
    {
        _inflater?.Dispose();
        _inflater = null;
    }
}

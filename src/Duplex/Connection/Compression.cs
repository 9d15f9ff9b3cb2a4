using System.Buffers;
using System.Collections.Concurrent;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;

namespace Duplex;

// permessage-deflate on a connection. A side that keeps context holds its own zlib stream, made
// at the first compressed message; a side without context takeover borrows one from a shared
// pool for each message, so an idle connection holds none.
public sealed partial class WebSocketConnection
{
    private DeflateParameters? _deflate;
    private PerMessageDeflateOptions? _deflateOptions;
    private Deflater? _deflater;   // only with our context takeover
    private Inflater? _inflater;   // only with the peer's context takeover

    /// <summary>The permessage-deflate parameters agreed in the handshake, or null.</summary>
    public DeflateParameters? Compression => _deflate;

    internal void UseCompression(DeflateParameters parameters, PerMessageDeflateOptions options)
    {
        _deflate = parameters;
        _deflateOptions = options;
        _reader.AllowedRsv = FrameHeader.Rsv1;
    }

    private bool ShouldCompress(int length) => _deflate is not null && length >= _deflateOptions!.Threshold;

    /// <summary>Compresses a message (or a fragment) with this connection's sending context.</summary>
    internal (byte[] Buffer, int Length) Compress(ReadOnlySpan<byte> payload, bool final)
    {
        var (bits, takeover) = _deflate!.Sender(Role);
        var options = _deflateOptions!;
        if (takeover)
        {
            _deflater ??= new Deflater(bits, contextTakeover: true, options.Level, options.MemoryLevel);
            return _deflater.Compress(payload, final);
        }
        var pooled = CodecPool.RentDeflater(bits, options.Level, options.MemoryLevel);
        try
        {
            return pooled.Compress(payload, final);
        }
        finally
        {
            if (final)
                CodecPool.Return(pooled, bits, options.Level, options.MemoryLevel);
            else
                _streamingDeflater = pooled; // a streamed message keeps its compressor to the end
        }
    }

    private Deflater? _streamingDeflater;

    /// <summary>Compresses the next fragment of a streamed message.</summary>
    internal (byte[] Buffer, int Length) CompressFragment(ReadOnlySpan<byte> payload, bool final)
    {
        if (_streamingDeflater is null)
            return Compress(payload, final);
        var deflater = _streamingDeflater;
        var result = deflater.Compress(payload, final);
        if (final)
        {
            var (bits, _) = _deflate!.Sender(Role);
            _streamingDeflater = null;
            CodecPool.Return(deflater, bits, _deflateOptions!.Level, _deflateOptions.MemoryLevel);
        }
        return result;
    }

    /// <summary>Inflates a received compressed message into a pooled buffer, within the size limit.</summary>
    private InflateStatus Decompress(ReadOnlySpan<byte> payload, out byte[] buffer, out int length)
    {
        var (bits, takeover) = _deflate!.Receiver(Role);
        if (takeover)
        {
            _inflater ??= new Inflater(bits, contextTakeover: true);
            return _inflater.Decompress(payload, _options.MaxMessageSize, out buffer, out length);
        }
        var pooled = CodecPool.RentInflater(bits);
        try
        {
            return pooled.Decompress(payload, _options.MaxMessageSize, out buffer, out length);
        }
        finally
        {
            CodecPool.Return(pooled, bits);
        }
    }

    // Turns a received message into what the application gets: inflated when it was compressed,
    // checked for UTF-8 when it is text. Null with an error when the peer broke a rule.
    private WebSocketMessage? Deliver(MessageType type, bool compressed, ReadOnlyMemory<byte> payload, out ProtocolError error)
    {
        error = default;
        if (!compressed)
            return new WebSocketMessage(type, payload);
        if (_deflate is null)
        {
            error = ProtocolError.Protocol("compressed message without permessage-deflate");
            return null;
        }
        var status = Decompress(payload.Span, out var buffer, out int length);
        if (status != InflateStatus.Ok || (type == MessageType.Text && !Utf8Validator.IsValid(buffer.AsSpan(0, length))))
        {
            ArrayPool<byte>.Shared.Return(buffer);
            error = status switch
            {
                InflateStatus.TooBig => new ProtocolError(Protocol.CloseStatus.MessageTooBig, $"message over the {_options.MaxMessageSize}-byte limit once inflated"),
                InflateStatus.Invalid => ProtocolError.InvalidUtf8("invalid compressed data"),
                _ => ProtocolError.InvalidUtf8("text message is not valid UTF-8"),
            };
            return null;
        }
        // Lent to the application like any payload; back to the pool at the next receive.
        if (Interlocked.Exchange(ref _handedCopy, buffer) is { } previous)
            ArrayPool<byte>.Shared.Return(previous);
        return new WebSocketMessage(type, buffer.AsMemory(0, length));
    }

    // Under the receive lock.
    private void DisposeInflater()
    {
        _inflater?.Dispose();
        _inflater = null;
    }

    // Under the frame lock.
    private void DisposeDeflater()
    {
        _deflater?.Dispose();
        _deflater = null;
        _streamingDeflater?.Dispose(); // a streamed message cut short: its stream is not reusable
        _streamingDeflater = null;
    }
}

/// <summary>
/// zlib streams without context takeover, shared by all connections: a few per window size are
/// kept (bounded), so compressing for thousands of connections costs a handful of streams.
/// </summary>
internal static class CodecPool
{
    private static readonly int Keep = Math.Max(4, Environment.ProcessorCount * 2);
    private static readonly ConcurrentDictionary<(int, int, int), ConcurrentBag<Deflater>> Deflaters = new();
    private static readonly ConcurrentDictionary<int, ConcurrentBag<Inflater>> Inflaters = new();

    public static Deflater RentDeflater(int bits, int level, int memLevel) =>
        Deflaters.GetOrAdd((bits, level, memLevel), static _ => []).TryTake(out var d) ? d : new Deflater(bits, contextTakeover: false, level, memLevel);

    public static void Return(Deflater deflater, int bits, int level, int memLevel)
    {
        var bag = Deflaters.GetOrAdd((bits, level, memLevel), static _ => []);
        if (bag.Count < Keep)
            bag.Add(deflater);
        else
            deflater.Dispose();
    }

    public static Inflater RentInflater(int bits) =>
        Inflaters.GetOrAdd(bits, static _ => []).TryTake(out var i) ? i : new Inflater(bits, contextTakeover: false);

    public static void Return(Inflater inflater, int bits)
    {
        var bag = Inflaters.GetOrAdd(bits, static _ => []);
        if (bag.Count < Keep)
            bag.Add(inflater);
        else
            inflater.Dispose();
    }
}

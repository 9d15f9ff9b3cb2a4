using System.Collections.Concurrent;

namespace Duplex.Protocol.Deflate;

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

namespace Duplex.Cli.Bench;

/// <summary>
/// Latency histogram with about 1.6 % precision from 1 ns to minutes, in a fixed array: 64
/// linear sub-buckets per power of two (the HdrHistogram idea). Recording is a few instructions
/// and allocates nothing. Not thread-safe: one per connection, merged at the end.
/// </summary>
internal sealed class Histogram
{
    private const int SubBits = 6;
    private const int SubCount = 1 << SubBits;
    private readonly long[] _counts = new long[64 * SubCount];

    public long Count { get; private set; }

    public void Record(long nanoseconds)
    {
        if (nanoseconds < 0)
            nanoseconds = 0;
        _counts[Index(nanoseconds)]++;
        Count++;
    }

    public void Add(Histogram other)
    {
        for (int i = 0; i < _counts.Length; i++)
            _counts[i] += other._counts[i];
        Count += other.Count;
    }

    private static int Index(long value)
    {
        if (value < SubCount)
            return (int)value;
        int magnitude = 63 - (int)long.LeadingZeroCount(value) - SubBits + 1;
        int sub = (int)(value >> magnitude) - SubCount / 2;
        return SubCount + (magnitude - 1) * (SubCount / 2) + sub;
    }

    private static long ValueAt(int index)
    {
        if (index < SubCount)
            return index;
        int magnitude = (index - SubCount) / (SubCount / 2) + 1;
        int sub = (index - SubCount) % (SubCount / 2) + SubCount / 2;
        return ((long)sub << magnitude) + (1L << magnitude) / 2; // middle of the bucket
    }

    /// <summary>The value below which <paramref name="percentile"/> % of the recordings fall, in nanoseconds.</summary>
    public long Percentile(double percentile)
    {
        if (Count == 0)
            return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(Count * percentile / 100.0));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
                return ValueAt(i);
        }
        return ValueAt(_counts.Length - 1);
    }
}

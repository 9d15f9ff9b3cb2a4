using System.Text.Unicode;

namespace Duplex.Protocol;

/// <summary>
/// Incremental strict UTF-8 validation (Unicode table 3-7): bytes arrive in any split and the
/// first invalid byte is reported in the chunk that carries it, so a bad text message fails
/// as early as possible. Whole runs go through the BCL's vectorised validator; only a
/// sequence split across chunks is walked byte by byte.
/// </summary>
internal struct Utf8Validator
{
    private int _needed;   // continuation bytes still expected
    private byte _low;     // allowed range of the next continuation byte
    private byte _high;

    /// <summary>True when the bytes so far end on a character boundary.</summary>
    public readonly bool IsComplete => _needed == 0;

    public void Reset() => this = default;

    /// <summary>Feeds the next bytes; false as soon as they cannot be part of valid UTF-8.</summary>
    public bool Append(ReadOnlySpan<byte> data)
    {
        int i = 0;
        while (_needed > 0 && i < data.Length)
        {
            if (!Step(data[i]))
                return false;
            i++;
        }
        if (i == data.Length)
            return true;
        ReadOnlySpan<byte> rest = data[i..];
        int tail = IncompleteTailStart(rest);
        if (!Utf8.IsValid(rest[..tail]))
            return false;
        for (int j = tail; j < rest.Length; j++)
        {
            if (!Step(rest[j]))
                return false;
        }
        return true;
    }

    /// <summary>Validates a whole, self-contained piece of text (for example a close reason).</summary>
    public static bool IsValid(ReadOnlySpan<byte> data) => Utf8.IsValid(data);

    // Where a sequence that the chunk ends inside of begins (the chunk's length if none does).
    private static int IncompleteTailStart(ReadOnlySpan<byte> data)
    {
        int n = data.Length;
        for (int k = 1; k <= 4 && k <= n; k++)
        {
            byte b = data[n - k];
            if (b < 0x80)
                return n;
            if (b >= 0xC0)
            {
                int length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
                return k < length ? n - k : n;
            }
        }
        return n;
    }

    private bool Step(byte b)
    {
        if (_needed > 0)
        {
            if (b < _low || b > _high)
                return false;
            _low = 0x80;
            _high = 0xBF;
            _needed--;
            return true;
        }
        if (b < 0x80)
            return true;
        (_needed, _low, _high) = b switch
        {
            >= 0xC2 and <= 0xDF => (1, (byte)0x80, (byte)0xBF),
            0xE0 => (2, (byte)0xA0, (byte)0xBF),           // no overlong 3-byte forms
            0xED => (2, (byte)0x80, (byte)0x9F),           // no surrogates
            >= 0xE1 and <= 0xEF => (2, (byte)0x80, (byte)0xBF),
            0xF0 => (3, (byte)0x90, (byte)0xBF),           // no overlong 4-byte forms
            >= 0xF1 and <= 0xF3 => (3, (byte)0x80, (byte)0xBF),
            0xF4 => (3, (byte)0x80, (byte)0x8F),           // nothing above U+10FFFF
            _ => (0, (byte)0, (byte)0),
        };
        return _needed > 0;
    }
}

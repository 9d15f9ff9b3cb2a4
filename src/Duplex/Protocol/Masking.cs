using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Duplex.Protocol;

/// <summary>
/// The XOR masking of RFC 6455 §5.3, vectorised. A mask key is held as the uint whose bytes in
/// memory are the key's four bytes in wire order, so one 32-bit XOR masks four payload bytes.
/// </summary>
internal static class Masking
{
    /// <summary>Masks (or unmasks) <paramref name="data"/> in place.</summary>
    /// <param name="offset">How many payload bytes of this frame came before <paramref name="data"/>.</param>
    public static void Apply(Span<byte> data, uint maskKey, long offset = 0) =>
        Xor(ref MemoryMarshal.GetReference(data), ref MemoryMarshal.GetReference(data), data.Length, Rotate(maskKey, offset));

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/> masked, in one pass.</summary>
    public static void ApplyCopy(ReadOnlySpan<byte> source, Span<byte> destination, uint maskKey, long offset = 0)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException("Destination is shorter than the source.", nameof(destination));
        Xor(ref MemoryMarshal.GetReference(source), ref MemoryMarshal.GetReference(destination), source.Length, Rotate(maskKey, offset));
    }

    // Shift the key so that its first byte lines up with payload byte `offset`.
    private static uint Rotate(uint maskKey, long offset)
    {
        int shift = (int)(offset & 3) * 8;
        return BitConverter.IsLittleEndian ? BitOperations.RotateRight(maskKey, shift) : BitOperations.RotateLeft(maskKey, shift);
    }

    private static void Xor(ref byte source, ref byte destination, int length, uint mask)
    {
        nuint i = 0, n = (nuint)length;
        if (Vector256.IsHardwareAccelerated && n >= (nuint)Vector256<byte>.Count)
        {
            Vector256<byte> m = Vector256.Create(mask).AsByte();
            nuint last = n - (nuint)Vector256<byte>.Count;
            for (; i <= last; i += (nuint)Vector256<byte>.Count)
                (Vector256.LoadUnsafe(ref source, i) ^ m).StoreUnsafe(ref destination, i);
        }
        if (Vector128.IsHardwareAccelerated && n - i >= (nuint)Vector128<byte>.Count)
        {
            Vector128<byte> m = Vector128.Create(mask).AsByte();
            nuint last = n - (nuint)Vector128<byte>.Count;
            for (; i <= last; i += (nuint)Vector128<byte>.Count)
                (Vector128.LoadUnsafe(ref source, i) ^ m).StoreUnsafe(ref destination, i);
        }
        // i is a multiple of 4 here, so the key's phase is unchanged.
        for (; i + 4 <= n; i += 4)
        {
            uint word = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref source, i));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref destination, i), word ^ mask);
        }
        for (; i < n; i++)
        {
            int shift = (int)(i & 3) * 8;
            byte keyByte = BitConverter.IsLittleEndian ? (byte)(mask >> shift) : (byte)(mask >> (24 - shift));
            Unsafe.Add(ref destination, i) = (byte)(Unsafe.Add(ref source, i) ^ keyByte);
        }
    }
}

using Duplex.Protocol;

namespace Duplex.Tests.Protocol;

public class MaskingTests
{
    private static byte[] Naive(byte[] data, byte[] key, int offset)
    {
        var result = (byte[])data.Clone();
        for (int i = 0; i < result.Length; i++)
            result[i] ^= key[(i + offset) % 4];
        return result;
    }

    public static IEnumerable<object[]> Lengths() =>
        new[] { 0, 1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 100, 1000, 65536 + 7 }.Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Matches_the_byte_by_byte_definition_at_every_offset(int length)
    {
        var random = new Random(length);
        var data = new byte[length];
        random.NextBytes(data);
        byte[] key = [0x37, 0xfa, 0x21, 0x3d];
        uint maskKey = BitConverter.ToUInt32(key);
        for (int offset = 0; offset < 4; offset++)
        {
            var inPlace = (byte[])data.Clone();
            Masking.Apply(inPlace, maskKey, offset);
            Assert.Equal(Naive(data, key, offset), inPlace);

            var copy = new byte[length];
            Masking.ApplyCopy(data, copy, maskKey, offset);
            Assert.Equal(inPlace, copy);
        }
    }

    [Fact]
    public void Masking_twice_restores_the_data()
    {
        var data = new byte[777];
        new Random(1).NextBytes(data);
        var copy = (byte[])data.Clone();
        Masking.Apply(copy, 0xDEADBEEF, 2);
        Assert.NotEqual(data, copy);
        Masking.Apply(copy, 0xDEADBEEF, 2);
        Assert.Equal(data, copy);
    }

    [Fact]
    public void A_payload_masked_in_pieces_equals_one_masked_whole()
    {
        var data = new byte[1000];
        new Random(2).NextBytes(data);
        var whole = (byte[])data.Clone();
        Masking.Apply(whole, 0x01020304, 0);
        var pieces = (byte[])data.Clone();
        int at = 0;
        foreach (int size in new[] { 1, 2, 3, 5, 33, 100, 856 })
        {
            Masking.Apply(pieces.AsSpan(at, size), 0x01020304, at);
            at += size;
        }
        Assert.Equal(whole, pieces);
    }

    [Fact]
    public void Mask_keys_from_the_source_differ()
    {
        var source = new MaskKeySource();
        var keys = Enumerable.Range(0, 1000).Select(_ => source.Next()).ToHashSet();
        Assert.True(keys.Count > 990);
    }
}

using System.Buffers;
using System.Text;
using System.Text.Unicode;
using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Tests.Protocol;

public class Utf8ValidatorTests
{

    public static TheoryData<string> ValidSequences => new(Utf8Samples.Valid);

    public static TheoryData<string> InvalidSequences => new(Utf8Samples.Invalid);

    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    private static bool Feed(byte[] data, int chunk)
    {
        var validator = new Utf8Validator();
        for (int i = 0; i < data.Length; i += chunk)
        {
            if (!validator.Append(data.AsSpan(i, Math.Min(chunk, data.Length - i))))
                return false;
        }
        return validator.IsComplete;
    }

    [Theory]
    [MemberData(nameof(ValidSequences))]
    public void Valid_text_passes_whole_and_split_at_every_byte(string hex)
    {
        var data = Hex(hex);
        for (int chunk = 1; chunk <= Math.Max(1, data.Length); chunk++)
            Assert.True(Feed(data, chunk), $"chunk {chunk}");
        for (int split = 0; split <= data.Length; split++)
        {
            var validator = new Utf8Validator();
            Assert.True(validator.Append(data.AsSpan(0, split)) && validator.Append(data.AsSpan(split)) && validator.IsComplete);
        }
    }

    [Theory]
    [MemberData(nameof(InvalidSequences))]
    public void Invalid_text_fails_whole_and_split_at_every_byte(string hex)
    {
        var data = Hex(hex);
        for (int chunk = 1; chunk <= data.Length; chunk++)
            Assert.False(Feed(data, chunk), $"chunk {chunk}");
    }

    [Theory]
    [MemberData(nameof(InvalidSequences))]
    public void Fails_on_the_first_byte_that_cannot_be_valid(string hex)
    {
        var data = Hex(hex);
        int expected = FirstImpossibleIndex(data);
        var validator = new Utf8Validator();
        int failedAt = -1;
        for (int i = 0; i < data.Length; i++)
        {
            if (!validator.Append(data.AsSpan(i, 1)))
            {
                failedAt = i;
                break;
            }
        }
        Assert.Equal(expected, failedAt);
    }

    // The first index at which the prefix can no longer be the start of valid UTF-8, or -1 if it stays a valid prefix.
    private static int FirstImpossibleIndex(byte[] data)
    {
        var chars = new char[data.Length * 2 + 2];
        for (int i = 1; i <= data.Length; i++)
        {
            var status = Utf8.ToUtf16(data.AsSpan(0, i), chars, out _, out _, replaceInvalidSequences: false, isFinalBlock: false);
            if (status == OperationStatus.InvalidData)
                return i - 1;
        }
        return -1;
    }

    [Fact]
    public void Agrees_with_the_strict_decoder_on_random_input_in_random_pieces()
    {
        var random = new Random(6455);
        var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
        // Bias toward bytes that make interesting sequences.
        byte[] alphabet = [0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];
        for (int round = 0; round < 5000; round++)
        {
            var data = new byte[random.Next(0, 12)];
            for (int i = 0; i < data.Length; i++)
                data[i] = alphabet[random.Next(alphabet.Length)];
            bool expected;
            try
            {
                strict.GetString(data);
                expected = true;
            }
            catch (DecoderFallbackException)
            {
                expected = false;
            }
            Assert.Equal(expected, Feed(data, random.Next(1, 5)));
        }
    }
}

using Duplex.Protocol;
using Duplex.Testing;

namespace Duplex.Tests.Protocol;

public class CloseFrameTests
{
    [Theory]
    [InlineData(1000)] [InlineData(1001)] [InlineData(1002)] [InlineData(1003)] [InlineData(1007)] [InlineData(1008)]
    [InlineData(1009)] [InlineData(1010)] [InlineData(1011)] [InlineData(1012)] [InlineData(1013)] [InlineData(1014)]
    [InlineData(3000)] [InlineData(3999)] [InlineData(4000)] [InlineData(4999)]
    public void Accepts_codes_that_may_be_sent(int code)
    {
        Assert.True(CloseFrame.TryParse(Frames.ClosePayload(code, "bye"), out var status, out var reason, out _));
        Assert.Equal(code, (int)status);
        Assert.Equal("bye", reason);
    }

    [Theory]
    [InlineData(0)] [InlineData(999)] [InlineData(1004)] [InlineData(1005)] [InlineData(1006)] [InlineData(1015)]
    [InlineData(1016)] [InlineData(1100)] [InlineData(2000)] [InlineData(2999)] [InlineData(5000)] [InlineData(65535)]
    public void Rejects_reserved_and_unassigned_codes_with_1002(int code)
    {
        Assert.False(CloseFrame.TryParse(Frames.ClosePayload(code), out _, out _, out var error));
        Assert.Equal(CloseStatus.ProtocolError, error.Status);
    }

    [Fact]
    public void Empty_payload_means_no_status()
    {
        Assert.True(CloseFrame.TryParse([], out var status, out var reason, out _));
        Assert.Equal(CloseStatus.NoStatusReceived, status);
        Assert.Equal("", reason);
    }

    [Fact]
    public void One_byte_payload_is_a_protocol_error()
    {
        Assert.False(CloseFrame.TryParse([0x03], out _, out _, out var error));
        Assert.Equal(CloseStatus.ProtocolError, error.Status);
    }

    [Fact]
    public void Reason_that_is_not_utf8_fails_with_1007()
    {
        byte[] payload = [0x03, 0xE8, 0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80];
        Assert.False(CloseFrame.TryParse(payload, out _, out _, out var error));
        Assert.Equal(CloseStatus.InvalidPayloadData, error.Status);
    }

    [Fact]
    public void Writes_code_and_reason_and_refuses_what_may_not_be_sent()
    {
        var buffer = new byte[125];
        int n = CloseFrame.Write(buffer, CloseStatus.GoingAway, "later");
        Assert.Equal(Frames.ClosePayload(1001, "later"), buffer[..n]);
        Assert.Equal(0, CloseFrame.Write(buffer, CloseStatus.NoStatusReceived, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => CloseFrame.Write(buffer, CloseStatus.AbnormalClosure, null));
        Assert.Throws<ArgumentException>(() => CloseFrame.Write(buffer, CloseStatus.NormalClosure, new string('x', 124)));
        Assert.Equal(125, CloseFrame.Write(buffer, CloseStatus.NormalClosure, new string('x', 123)));
    }

    [Fact]
    public void Truncates_a_long_reason_on_a_character_boundary()
    {
        string reason = new('é', 100); // 200 bytes
        string cut = CloseFrame.Truncate(reason);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(cut) <= 123);
        Assert.Equal(61, cut.Length);
    }
}

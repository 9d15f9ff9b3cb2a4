using Duplex.Protocol;

namespace Duplex.Hub.Tests;

/// <summary>Inputs that scripts/fuzz.sh found crashing, kept as tests.</summary>
public class FuzzFindingsTests
{
    private static HubSession Session() => new(new MessageHub(), WebSocketConnection.Create(Stream.Null, Role.Server,
        new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero }), "fuzz", new HubIdentity("fuzz", ["*"], ["*"]));

    [Fact]
    public async Task A_request_with_invalid_utf8_inside_a_string_is_a_bad_request_not_a_crash()
    {
        // hub-request crash 1: {"type":"pres\x87nc{","channel":"lobby"}
        byte[] request = Convert.FromHexString("7b2274797065223a2270726573876e637b222c226368616e6e656c223a226c6f626279227d");
        Assert.False(await Session().HandleAsync(request, text: true));
    }
}

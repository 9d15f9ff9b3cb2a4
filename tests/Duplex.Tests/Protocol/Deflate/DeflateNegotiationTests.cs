using Duplex.Protocol;
using Duplex.Protocol.Deflate;

namespace Duplex.Tests.Protocol.Deflate;

public class DeflateNegotiationTests
{
    private static List<ExtensionOffer> Offers(string header)
    {
        Assert.True(Handshake.TryParseExtensions(header.Split(','), out var offers));
        return offers;
    }

    private static (DeflateParameters? Parameters, string? Response) Accept(string header, PerMessageDeflateOptions? options = null)
    {
        DeflateNegotiation.TryAccept(Offers(header), (options ?? new PerMessageDeflateOptions()).Limits, out var p, out var r);
        return (p, r);
    }

    [Fact]
    public void Plain_offer_is_accepted_with_context_takeover_and_full_windows()
    {
        var (p, r) = Accept("permessage-deflate");
        Assert.Equal("permessage-deflate", r);
        Assert.Equal(new DeflateParameters(false, false, 15, 15), p);
    }

    [Fact]
    public void Browser_offer_with_bare_client_max_window_bits()
    {
        var (p, r) = Accept("permessage-deflate; client_max_window_bits", PerMessageDeflateOptions.ForServer());
        Assert.Equal("permessage-deflate; server_no_context_takeover; client_max_window_bits=12", r);
        Assert.Equal(new DeflateParameters(true, false, 15, 12), p);
    }

    [Theory]
    [InlineData("permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover", true, false, 15, 15)]
    [InlineData("permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover", false, true, 15, 15)]
    [InlineData("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10", false, false, 10, 15)]
    [InlineData("permessage-deflate; client_max_window_bits=9", "permessage-deflate; client_max_window_bits=9", false, false, 15, 9)]
    [InlineData("permessage-deflate; client_max_window_bits=\"11\"", "permessage-deflate; client_max_window_bits=11", false, false, 15, 11)]
    public void Each_parameter_is_honoured(string offer, string response, bool serverNoContext, bool clientNoContext, int serverBits, int clientBits)
    {
        var (p, r) = Accept(offer);
        Assert.Equal(response, r);
        Assert.Equal(new DeflateParameters(serverNoContext, clientNoContext, serverBits, clientBits), p);
    }

    [Theory]
    [InlineData("permessage-deflate; unknown_parameter")]
    [InlineData("permessage-deflate; server_no_context_takeover; server_no_context_takeover")]
    [InlineData("permessage-deflate; server_no_context_takeover=1")]
    [InlineData("permessage-deflate; server_max_window_bits")]
    [InlineData("permessage-deflate; server_max_window_bits=16")]
    [InlineData("permessage-deflate; server_max_window_bits=7")]
    [InlineData("permessage-deflate; server_max_window_bits=08")]
    [InlineData("permessage-deflate; server_max_window_bits=abc")]
    [InlineData("permessage-deflate; client_max_window_bits=0")]
    [InlineData("permessage-deflate; server_max_window_bits=8")] // zlib cannot compress with 8 bits
    [InlineData("x-webkit-deflate-frame")]
    public void Offers_that_break_the_rules_are_declined(string offer)
    {
        var (p, r) = Accept(offer);
        Assert.Null(p);
        Assert.Null(r);
    }

    [Fact]
    public void The_first_acceptable_of_several_offers_wins()
    {
        var (p, r) = Accept("permessage-deflate; server_max_window_bits=8, permessage-deflate; bogus, permessage-deflate; client_no_context_takeover");
        Assert.Equal("permessage-deflate; client_no_context_takeover", r);
        Assert.True(p!.ClientNoContextTakeover);
    }

    [Fact]
    public void Server_limits_apply_to_what_it_accepts()
    {
        var options = new PerMessageDeflateOptions { ServerMaxWindowBits = 11, ClientMaxWindowBits = 10, ClientContextTakeover = false };
        var (p, r) = Accept("permessage-deflate; client_max_window_bits", options);
        Assert.Equal("permessage-deflate; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10", r);
        Assert.Equal(new DeflateParameters(false, true, 11, 10), p);
    }

    [Fact]
    public void Client_offer_lists_what_the_client_wants()
    {
        Assert.Equal("permessage-deflate; client_max_window_bits", DeflateNegotiation.BuildOffer(new PerMessageDeflateOptions().Limits));
        Assert.Equal("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=10",
            DeflateNegotiation.BuildOffer(new PerMessageDeflateOptions { ServerContextTakeover = false, ClientContextTakeover = false, ServerMaxWindowBits = 12, ClientMaxWindowBits = 10 }.Limits));
    }

    private static bool Read(string response, out DeflateParameters? p, out string? error, PerMessageDeflateOptions? options = null) =>
        DeflateNegotiation.TryReadResponse(Offers(response)[0], (options ?? new PerMessageDeflateOptions()).Limits, out p, out error);

    [Fact]
    public void Client_reads_a_valid_answer()
    {
        Assert.True(Read("permessage-deflate; server_no_context_takeover; client_max_window_bits=12", out var p, out _));
        Assert.Equal(new DeflateParameters(true, false, 15, 12), p);
    }

    [Theory]
    [InlineData("permessage-deflate; bogus")]
    [InlineData("permessage-deflate; client_max_window_bits")]
    [InlineData("permessage-deflate; client_max_window_bits=8")]
    [InlineData("permessage-deflate; server_max_window_bits=15; server_max_window_bits=15")]
    public void Client_fails_on_an_answer_it_cannot_accept(string response)
    {
        Assert.False(Read(response, out _, out var error));
        Assert.NotNull(error);
    }

    [Fact]
    public void Client_fails_when_the_server_widens_the_window_it_was_limited_to()
    {
        var options = new PerMessageDeflateOptions { ServerMaxWindowBits = 10 };
        Assert.False(Read("permessage-deflate; server_max_window_bits=12", out _, out var error, options));
        Assert.Contains("12-bit", error);
    }
}

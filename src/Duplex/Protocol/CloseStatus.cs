namespace Duplex.Protocol;

/// <summary>
/// Close status codes (RFC 6455 §7.4 and the IANA registry). Any value of the type may be held:
/// codes 3000-4999 are for libraries and applications.
/// </summary>
public enum CloseStatus : ushort
{
    /// <summary>1000: the purpose of the connection is fulfilled.</summary>
    NormalClosure = 1000,
    /// <summary>1001: the endpoint is going away (a server shutting down, a page navigated away).</summary>
    GoingAway = 1001,
    /// <summary>1002: the peer broke the protocol (a malformed frame, a bad opcode, an unmasked client frame...).</summary>
    ProtocolError = 1002,
    /// <summary>1003: a kind of data the endpoint cannot take (binary where only text is handled, say).</summary>
    UnsupportedData = 1003,
    /// <summary>Never sent: reported when a close frame carried no status.</summary>
    NoStatusReceived = 1005,
    /// <summary>Never sent: reported when the connection ended without a close frame.</summary>
    AbnormalClosure = 1006,
    /// <summary>1007: the data did not match the message type (text that is not valid UTF-8).</summary>
    InvalidPayloadData = 1007,
    /// <summary>1008: a message broke the endpoint's policy (also reported locally for a peer that stops reading).</summary>
    PolicyViolation = 1008,
    /// <summary>1009: a message was larger than the endpoint accepts.</summary>
    MessageTooBig = 1009,
    /// <summary>1010: the client needed an extension the server did not agree to.</summary>
    MandatoryExtension = 1010,
    /// <summary>1011: the endpoint hit an unexpected condition (a handler threw, say).</summary>
    InternalServerError = 1011,
    /// <summary>1012: the service is restarting; reconnecting later may work.</summary>
    ServiceRestart = 1012,
    /// <summary>1013: the endpoint is overloaded (or the peer read too slowly); try again later.</summary>
    TryAgainLater = 1013,
    /// <summary>1014: a gateway or proxy got an invalid answer from the server behind it.</summary>
    BadGateway = 1014,
    /// <summary>Never sent: reported when the TLS handshake failed.</summary>
    TlsHandshakeFailure = 1015,
}

/// <summary>Which close codes may travel in a close frame.</summary>
internal static class CloseStatusRules
{
    /// <summary>
    /// True when <paramref name="code"/> may appear on the wire: 1000-1003, 1007-1014 (the
    /// registered ones) and 3000-4999. 1004-1006 and 1015 are reserved, the rest unassigned.
    /// </summary>
    public static bool IsValidOnWire(int code) =>
        code is (>= 1000 and <= 1003) or (>= 1007 and <= 1014) or (>= 3000 and <= 4999);
}

namespace Duplex.Protocol;

/// <summary>
/// Close status codes (RFC 6455 §7.4 and the IANA registry). Any value of the type may be held:
/// codes 3000-4999 are for libraries and applications.
/// </summary>
public enum CloseStatus : ushort
{
    NormalClosure = 1000,
    GoingAway = 1001,
    ProtocolError = 1002,
    UnsupportedData = 1003,
    /// <summary>Never sent: reported when a close frame carried no status.</summary>
    NoStatusReceived = 1005,
    /// <summary>Never sent: reported when the connection ended without a close frame.</summary>
    AbnormalClosure = 1006,
    InvalidPayloadData = 1007,
    PolicyViolation = 1008,
    MessageTooBig = 1009,
    MandatoryExtension = 1010,
    InternalServerError = 1011,
    ServiceRestart = 1012,
    TryAgainLater = 1013,
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

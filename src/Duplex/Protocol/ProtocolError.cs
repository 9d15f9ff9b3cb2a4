namespace Duplex.Protocol;

/// <summary>
/// A violation of the protocol by the peer: the status to close with and a short reason.
/// Raised once by the core and turned into exactly one close frame by the connection.
/// </summary>
internal readonly record struct ProtocolError(CloseStatus Status, string Reason)
{
    public static ProtocolError Protocol(string reason) => new(CloseStatus.ProtocolError, reason);

    public static ProtocolError InvalidUtf8(string reason) => new(CloseStatus.InvalidPayloadData, reason);

    public override string ToString() => $"{(int)Status} {Reason}";
}

using System.Text;
using Duplex.Protocol;

namespace Duplex;

/// <summary>The kind of a received message; <see cref="Close"/> marks the end of the stream.</summary>
public enum MessageType : byte
{
    /// <summary>A UTF-8 text message (validated before it is handed over).</summary>
    Text = 1,
    /// <summary>A binary message.</summary>
    Binary = 2,
    /// <summary>Not a message: the connection has closed (see the close status and reason).</summary>
    Close = 8,
}

/// <summary>The states of a connection (RFC 6455 §4-§7).</summary>
public enum ConnectionState
{
    /// <summary>Messages flow both ways.</summary>
    Open,
    /// <summary>We sent a close frame and wait for the peer's (or, both sent, for the end of TCP).</summary>
    CloseSent,
    /// <summary>The peer's close frame came; the echo is on its way.</summary>
    CloseReceived,
    /// <summary>Closed: the close handshake is over, or the connection failed or was aborted.</summary>
    Closed,
}

/// <summary>
/// One received message, or the end of the stream. The payload lives in the connection's receive
/// buffer and is valid until the next receive: copy it (<see cref="ToArray"/>, <see cref="GetText"/>)
/// to keep it.
/// </summary>
public readonly struct WebSocketMessage
{
    internal WebSocketMessage(MessageType type, ReadOnlyMemory<byte> payload, CloseStatus closeStatus = default, string? closeReason = null)
    {
        Type = type;
        Payload = payload;
        CloseStatus = closeStatus;
        CloseReason = closeReason;
    }

    /// <summary>Text, binary, or <see cref="MessageType.Close"/> for the end of the stream.</summary>
    public MessageType Type { get; }

    /// <summary>
    /// The message's bytes (UTF-8 for text). Lent, not given: valid and unchanged only until the
    /// next receive on the same connection, after which the memory is reused. Copy what you keep.
    /// </summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>True when the connection has closed: no more messages will come.</summary>
    public bool IsClose => Type == MessageType.Close;

    /// <summary>For a close: the status the connection ended with (1005 when the peer sent none, 1006 when it just vanished).</summary>
    public CloseStatus CloseStatus { get; }

    /// <summary>For a close: the reason given with the status.</summary>
    public string? CloseReason { get; }

    /// <summary>The payload decoded as UTF-8 (text messages are already validated).</summary>
    public string GetText() => Encoding.UTF8.GetString(Payload.Span);

    /// <summary>A copy of the payload, yours to keep.</summary>
    public byte[] ToArray() => Payload.ToArray();

    /// <summary>The type and size (or the close status and reason), for logs.</summary>
    public override string ToString() => IsClose ? $"Close {(int)CloseStatus} {CloseReason}" : $"{Type} ({Payload.Length} bytes)";
}

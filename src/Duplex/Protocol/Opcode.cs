namespace Duplex.Protocol;

/// <summary>Frame opcodes of RFC 6455 §5.2.</summary>
public enum Opcode : byte
{
    /// <summary>The next piece of a fragmented message.</summary>
    Continuation = 0x0,
    /// <summary>The first frame of a UTF-8 text message.</summary>
    Text = 0x1,
    /// <summary>The first frame of a binary message.</summary>
    Binary = 0x2,
    /// <summary>A close frame: an optional status and reason.</summary>
    Close = 0x8,
    /// <summary>A ping, to be answered with a pong carrying the same payload.</summary>
    Ping = 0x9,
    /// <summary>A pong: the answer to a ping, or an unsolicited heartbeat.</summary>
    Pong = 0xA,
}

internal static class OpcodeRules
{
    public static bool IsControl(Opcode opcode) => ((byte)opcode & 0x8) != 0;

    public static bool IsKnown(Opcode opcode) => opcode is Opcode.Continuation or Opcode.Text or Opcode.Binary
        or Opcode.Close or Opcode.Ping or Opcode.Pong;
}

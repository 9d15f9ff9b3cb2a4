namespace Duplex.Protocol;

/// <summary>Frame opcodes of RFC 6455 §5.2.</summary>
public enum Opcode : byte
{
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

internal static class OpcodeRules
{
    public static bool IsControl(Opcode opcode) => ((byte)opcode & 0x8) != 0;

    public static bool IsKnown(Opcode opcode) => opcode is Opcode.Continuation or Opcode.Text or Opcode.Binary
        or Opcode.Close or Opcode.Ping or Opcode.Pong;
}

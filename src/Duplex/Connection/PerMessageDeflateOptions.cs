namespace Duplex;

/// <summary>
/// permessage-deflate (RFC 7692) settings. Set <see cref="WebSocketOptions.Compression"/> to an
/// instance to offer (client) or accept (server) the extension; leave it null to go without.
/// </summary>
/// <remarks>
/// Memory, per connection, in the default setup: the side that compresses without context
/// takeover borrows a compressor from a shared pool for each message, so it holds none while
/// idle. A side that keeps context (takeover) holds its own: about 2^(bits+2) + 2^(memLevel+9)
/// bytes to compress (256 KiB at 15 bits and level 8), 2^bits + 7 KiB to decompress, made at
/// the first compressed message. The server defaults cap what clients make it keep: it asks
/// clients for a 4 KiB window (<see cref="ClientMaxWindowBits"/> 12) when they allow that, and
/// compresses its own messages without context takeover.
/// </remarks>
public sealed class PerMessageDeflateOptions
{
    /// <summary>Messages shorter than this go uncompressed (compressing them costs more than it saves). Default 64 bytes.</summary>
    public int Threshold { get; set; } = 64;

    /// <summary>zlib compression level, 1 (fastest) to 9 (smallest). Default 6.</summary>
    public int Level { get; set; } = 6;

    /// <summary>zlib memory level for the compressor, 1 to 9 (more is faster and larger). Default 8.</summary>
    public int MemoryLevel { get; set; } = 8;

    /// <summary>
    /// Largest window the server compresses with (9-15). A server uses at most this; a client
    /// asks the server for it when below 15.
    /// </summary>
    public int ServerMaxWindowBits { get; set; } = 15;

    /// <summary>
    /// Largest window the client compresses with (9-15). A server asks clients for it when they
    /// allow it (browsers do); a client uses at most this.
    /// </summary>
    public int ClientMaxWindowBits { get; set; } = 15;

    /// <summary>Whether the server keeps its compression context between messages.</summary>
    public bool ServerContextTakeover { get; set; } = true;

    /// <summary>Whether the client keeps its compression context between messages.</summary>
    public bool ClientContextTakeover { get; set; } = true;

    /// <summary>
    /// Defaults for a server with many connections: it compresses without context takeover (a
    /// pooled compressor, and a broadcast compressed once for all), and asks clients for a 4 KiB
    /// window, so a connection that received compressed data holds about 11 KiB of zlib state.
    /// </summary>
    public static PerMessageDeflateOptions ForServer() => new() { ServerContextTakeover = false, ClientMaxWindowBits = 12 };

    /// <summary>The negotiation's view of these options (the protocol layer knows nothing of this type).</summary>
    internal Protocol.Deflate.DeflateLimits Limits => new(ServerMaxWindowBits, ClientMaxWindowBits, ServerContextTakeover, ClientContextTakeover);

    internal void Validate()
    {
        if (ServerMaxWindowBits is < 9 or > 15 || ClientMaxWindowBits is < 9 or > 15)
            throw new ArgumentOutOfRangeException(nameof(ServerMaxWindowBits), "Window bits are 9 to 15 (zlib cannot compress with 8).");
        if (Level is < 1 or > 9 || MemoryLevel is < 1 or > 9)
            throw new ArgumentOutOfRangeException(nameof(Level), "Level and memory level are 1 to 9.");
        ArgumentOutOfRangeException.ThrowIfNegative(Threshold);
    }
}

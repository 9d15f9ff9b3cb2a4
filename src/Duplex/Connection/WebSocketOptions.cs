namespace Duplex;

/// <summary>Settings every connection has, client or server.</summary>
public class WebSocketOptions
{
    /// <summary>The largest message accepted (after reassembly); a bigger one closes with 1009. Default 16 MiB.</summary>
    public long MaxMessageSize { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// How long the connection may be silent before a ping is sent. Zero or
    /// <see cref="Timeout.InfiniteTimeSpan"/> turns keep-alive off. Default 30 s.
    /// </summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long to wait for any answer to a keep-alive ping before dropping the peer. Default 30 s.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the side that starts the close waits for the peer's close frame and TCP close. Default 5 s.</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a write may wait for a peer that does not read (its TCP window stays shut) before
    /// the connection is dropped, reporting 1008 locally (a close frame cannot reach a peer that
    /// reads nothing). Like nginx's <c>send_timeout</c>. Default 60 s.
    /// </summary>
    public TimeSpan SendTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The most bytes of sends that may wait for a slow peer (being written, or queued behind the
    /// send in progress). A send past it drops the connection, reporting 1013 locally, and
    /// throws <see cref="WebSocketClosedException"/>: memory never grows with a peer that stops
    /// reading. Like uWebSockets' <c>maxBackpressure</c>. Default 64 MiB.
    /// </summary>
    public long MaxPendingSendBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// permessage-deflate (RFC 7692): null (the default) goes without; an instance offers it
    /// (client) or accepts clients' offers (server). See <see cref="PerMessageDeflateOptions.ForServer"/>.
    /// </summary>
    public PerMessageDeflateOptions? Compression { get; set; }

    /// <summary>
    /// Run connections on Duplex's own epoll event loops (Linux x86-64; elsewhere this is
    /// ignored): reads complete on the loop thread and the code awaiting them (a server's handler,
    /// a client's receive loop) runs there, with no hop to the thread pool per read, and what it
    /// sends in one loop turn goes out in one write. On by default. Code continuing on the loop
    /// must then not block (no <c>.Result</c>, no synchronous console or file reads; offload long
    /// CPU work with <c>Task.Run</c>). Off, connections use .NET's sockets and the thread pool.
    /// </summary>
    public bool UseEventLoop { get; set; } = true;

    /// <summary>The clock of keep-alive and close timeouts (tests replace it).</summary>
    internal TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal bool KeepAliveEnabled => KeepAliveInterval > TimeSpan.Zero && KeepAliveInterval != Timeout.InfiniteTimeSpan;
}

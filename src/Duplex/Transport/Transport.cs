using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;

namespace Duplex.Transport;

/// <summary>
/// The one seam between a connection and how its bytes move: read what is there, wait until
/// readable, read, write, shut down sending. Implemented by the event loop
/// (<see cref="LoopTransport"/>) and by any <see cref="Stream"/> (<see cref="StreamTransport"/>:
/// TLS, a stream another server upgraded). One reader and one writer at a time.
/// </summary>
internal abstract class Transport : IDisposable
{
    /// <summary>Reads what is there now, without waiting: bytes read (0 at the end of the stream), or -1 when nothing is known to be there.</summary>
    public abstract int TryRead(Span<byte> buffer);

    /// <summary>Waits until bytes (or the end) arrive, holding no buffer meanwhile.</summary>
    public abstract ValueTask WaitReadableAsync(CancellationToken cancellationToken);

    /// <summary>Reads at least one byte, waiting as needed; 0 at the end of the stream.</summary>
    public abstract ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    public abstract ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Ends our direction (TLS close_notify, then TCP FIN); reading goes on.</summary>
    public abstract ValueTask ShutdownSendAsync();

    /// <summary>
    /// False for a stream that can only be ended whole (another server's upgraded stream, an
    /// HTTP/2 stream): its owner ends TCP or the stream when the connection is done with it.
    /// </summary>
    public virtual bool CanShutdownSend => true;

    public abstract void Dispose();

    /// <summary>The transport for a stream: straight on the event loop when it is a loop socket, else through the stream.</summary>
    public static Transport For(Stream stream, Socket? socket) =>
        stream is EventLoopStream loop ? new LoopTransport(loop) : new StreamTransport(stream, socket);

    /// <summary>
    /// The one rule for what counts as the transport failing (the peer vanished, the socket was
    /// closed under us, TLS broke): such an exception ends the connection; any other is a bug.
    /// </summary>
    public static bool IsFailure(Exception e) =>
        e is IOException or SocketException or ObjectDisposedException or AuthenticationException;
}

/// <summary>A socket on the event loop: direct non-blocking system calls, waits signalled by the loop.</summary>
internal sealed class LoopTransport(EventLoopStream stream) : Transport
{
    public override int TryRead(Span<byte> buffer) => stream.TryReadNow(buffer);

    public override ValueTask WaitReadableAsync(CancellationToken cancellationToken) => stream.WaitReadableAsync(cancellationToken);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) => stream.ReadAsync(buffer, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) => stream.WriteAsync(buffer, cancellationToken);

    public override ValueTask ShutdownSendAsync()
    {
        stream.Socket.Shutdown(SocketShutdown.Send);
        return default;
    }

    public override void Dispose() => stream.Dispose();
}

/// <summary>
/// Any stream: TLS over the event loop or over .NET sockets, or a stream that another HTTP
/// server upgraded. A zero-byte read waits for bytes without holding a buffer.
/// </summary>
internal sealed class StreamTransport(Stream stream, Socket? socket = null) : Transport
{
    public override int TryRead(Span<byte> buffer) => -1;

    public override async ValueTask WaitReadableAsync(CancellationToken cancellationToken) =>
        await stream.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) => stream.ReadAsync(buffer, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) => stream.WriteAsync(buffer, cancellationToken);

    private Socket? Tcp => socket ?? (stream as NetworkStream)?.Socket ?? (stream as EventLoopStream)?.Socket;

    public override bool CanShutdownSend => Tcp is not null;

    public override async ValueTask ShutdownSendAsync()
    {
        if (stream is SslStream tls)
            await tls.ShutdownAsync().ConfigureAwait(false);
        Tcp?.Shutdown(SocketShutdown.Send);
    }

    public override void Dispose() => stream.Dispose();
}

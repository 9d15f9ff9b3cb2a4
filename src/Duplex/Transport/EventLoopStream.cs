using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Duplex.Transport.LinuxNative;

namespace Duplex.Transport;

/// <summary>
/// A socket on an <see cref="EventLoop"/>: reads and writes are direct non-blocking system
/// calls that complete synchronously when they can, and wait for the loop's signal when not.
/// One reader and one writer at a time (the connection's locks guarantee that).
/// </summary>
internal sealed class EventLoopStream : Stream, IReady
{
    private readonly EventLoop _loop;
    private readonly int _fd;
    private int _disposed;

    internal EventLoopStream(EventLoop loop, Socket socket, ulong id)
    {
        _loop = loop;
        Socket = socket;
        Id = id;
        _fd = (int)socket.Handle;
    }

    public Socket Socket { get; }

    internal ulong Id { get; }

    internal Readiness ReadReady { get; } = new();

    internal Readiness WriteReady { get; } = new();

    void IReady.OnReady(uint events)
    {
        if ((events & (LinuxNative.EpollIn | LinuxNative.EpollRdHup | LinuxNative.EpollHup | LinuxNative.EpollErr)) != 0)
            ReadReady.Signal();
        if ((events & (LinuxNative.EpollOut | LinuxNative.EpollHup | LinuxNative.EpollErr)) != 0)
            WriteReady.Signal();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ReadReady.BeginAttempt();
        int n = TryRead(buffer.Span);
        if (n >= 0)
            return new ValueTask<int>(n);
        return ReadSlowAsync(buffer, cancellationToken);
    }

    /// <summary>One non-blocking read: bytes read (0 at end of stream), or -1 when none are there yet.</summary>
    public int TryReadNow(Span<byte> buffer)
    {
        ReadReady.BeginAttempt();
        return TryRead(buffer);
    }

    /// <summary>
    /// After <see cref="TryReadNow"/> found nothing: waits until bytes arrive, holding no buffer
    /// meanwhile (what a zero-byte read does on other streams). Then try again.
    /// </summary>
    public ValueTask WaitReadableAsync(CancellationToken cancellationToken)
    {
        if (!ReadReady.TryWait(out var wait))
            return default; // bytes came in between: try again at once
        return cancellationToken.CanBeCanceled ? WaitCancellableAsync(wait, cancellationToken) : wait;
    }

    private async ValueTask WaitCancellableAsync(ValueTask wait, CancellationToken cancellationToken)
    {
        using (cancellationToken.UnsafeRegister(static s => ((EventLoopStream)s!).Dispose(), this))
            await wait.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadSlowAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (ReadReady.TryWait(out var wait))
            {
                using (cancellationToken.UnsafeRegister(static s => ((EventLoopStream)s!).Dispose(), this))
                    await wait.ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }
            ObjectDisposedException.ThrowIf(ReadReady.IsClosed, this);
            ReadReady.BeginAttempt();
            int n = TryRead(buffer.Span);
            if (n >= 0)
                return n;
        }
    }

    // Bytes read (0 at end of stream), or -1 when the call would block.
    private unsafe int TryRead(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(ReadReady.IsClosed, this);
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = read(_fd, p, buffer.Length);
                if (n >= 0)
                    return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EAgain)
                    return -1;
                if (errno != EIntr)
                    throw new IOException("read failed", new SocketException(errno));
            }
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        WriteReady.BeginAttempt();
        int sent = TrySend(buffer.Span);
        if (sent == buffer.Length)
            return default;
        return WriteSlowAsync(buffer[Math.Max(0, sent)..], cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteSlowAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        _loop.WatchWrites(this, _fd, on: true);
        try
        {
            await WriteRestAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (!WriteReady.IsClosed)
                _loop.WatchWrites(this, _fd, on: false);
        }
    }

    private async ValueTask WriteRestAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        // The first try after asking for events: the buffer may have drained meanwhile.
        WriteReady.BeginAttempt();
        int first = TrySend(buffer.Span);
        if (first > 0)
            buffer = buffer[first..];
        while (!buffer.IsEmpty)
        {
            if (WriteReady.TryWait(out var wait))
            {
                using (cancellationToken.UnsafeRegister(static s => ((EventLoopStream)s!).Dispose(), this))
                    await wait.ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }
            ObjectDisposedException.ThrowIf(WriteReady.IsClosed, this);
            WriteReady.BeginAttempt();
            int sent = TrySend(buffer.Span);
            if (sent > 0)
                buffer = buffer[sent..];
        }
    }

    // Bytes sent, or -1 when the call would block.
    private unsafe int TrySend(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(WriteReady.IsClosed, this);
        int total = 0;
        fixed (byte* p = buffer)
        {
            while (total < buffer.Length)
            {
                nint n = send(_fd, p + total, buffer.Length - total, MsgNoSignal);
                if (n >= 0)
                {
                    total += (int)n;
                    continue;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EAgain)
                    return total == 0 ? -1 : total;
                if (errno != EIntr)
                    throw new IOException("send failed", new SocketException(errno));
            }
        }
        return total;
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _loop.Unregister(this, _fd);
        ReadReady.Close();
        WriteReady.Close();
        Socket.Dispose();
        base.Dispose(disposing);
    }
}

using System.Threading.Tasks.Sources;

namespace Duplex.Transport;

/// <summary>
/// One direction (read or write) of a socket on the event loop: the I/O side tries the system
/// call first and waits here only when it would block; the loop signals readiness and runs the
/// waiting continuation inline, on its own thread, with no hop to the thread pool. An edge that
/// arrives between a failed try and the wait is never lost (state 1 makes the waiter retry).
/// </summary>
internal sealed class Readiness : IValueTaskSource
{
    private const int Idle = 0, Ready = 1, Waiting = 2;
    private int _state;
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = false };
    private volatile bool _closed;

    public bool IsClosed => _closed;

    /// <summary>Before a try: forget any earlier edge, the system call is about to look for itself.</summary>
    public void BeginAttempt() => Volatile.Write(ref _state, Idle);

    /// <summary>After a try that would block: false if an edge came meanwhile (try again), else a task for the next edge.</summary>
    public bool TryWait(out ValueTask wait)
    {
        if (_closed)
            throw new ObjectDisposedException(nameof(EventLoopStream));
        _core.Reset();
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) != Idle)
        {
            wait = default;
            return false;
        }
        wait = new ValueTask(this, _core.Version);
        return true;
    }

    /// <summary>From the loop: the socket became ready (or failed, or closed).</summary>
    public void Signal()
    {
        if (Interlocked.Exchange(ref _state, Ready) == Waiting)
        {
            Volatile.Write(ref _state, Idle);
            _core.SetResult(true);
        }
    }

    /// <summary>The stream is closing: wake a waiter, which then sees the stream closed.</summary>
    public void Close()
    {
        _closed = true;
        Signal();
    }

    public void GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}

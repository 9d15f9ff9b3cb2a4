namespace Duplex;

/// <summary>
/// A small async mutex: an int when nobody waits, a queue of waiters only under contention.
/// Connections hold two of these; <see cref="SemaphoreSlim"/> costs twice the memory, and an idle
/// server holds one connection per client. Waiters are served in order, and ownership passes
/// straight to the next waiter on exit.
/// </summary>
internal sealed class AsyncLock
{
    private int _taken;
    private Waiter? _head, _tail;   // guarded by lock (this)

    private sealed class Waiter(AsyncLock owner) : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public Waiter? Next;
        public CancellationTokenRegistration Registration;

        public void Cancel(CancellationToken token)
        {
            if (owner.Remove(this))
                TrySetCanceled(token);
        }
    }

    /// <summary>Takes the lock if it is free.</summary>
    public bool TryEnter() => Interlocked.CompareExchange(ref _taken, 1, 0) == 0;

    public ValueTask EnterAsync(CancellationToken cancellationToken = default)
    {
        if (TryEnter())
            return default;
        return new ValueTask(Enqueue(cancellationToken));
    }

    private Task Enqueue(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var waiter = new Waiter(this);
        lock (this)
        {
            if (TryEnter())
                return Task.CompletedTask;
            if (_tail is null)
                _head = _tail = waiter;
            else
                _tail = _tail.Next = waiter;
        }
        if (cancellationToken.CanBeCanceled)
            waiter.Registration = cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).Cancel(token), waiter);
        return waiter.Task;
    }

    private bool Remove(Waiter waiter)
    {
        lock (this)
        {
            Waiter? previous = null;
            for (var w = _head; w is not null; previous = w, w = w.Next)
            {
                if (w != waiter)
                    continue;
                if (previous is null)
                    _head = w.Next;
                else
                    previous.Next = w.Next;
                if (_tail == w)
                    _tail = previous;
                return true;
            }
            return false;
        }
    }

    /// <summary>Releases the lock, handing it to the first waiter if there is one.</summary>
    public void Exit()
    {
        Waiter? next;
        lock (this)
        {
            next = _head;
            if (next is null)
            {
                Volatile.Write(ref _taken, 0);
                return;
            }
            _head = next.Next;
            if (_head is null)
                _tail = null;
        }
        next.Registration.Dispose();
        next.TrySetResult(); // the lock stays taken: it now belongs to this waiter
    }
}

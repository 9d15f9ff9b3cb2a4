namespace Duplex.Transport;

/// <summary>Something with output gathered during a loop turn, flushed once when the turn ends.</summary>
internal interface ICorked
{
    void FlushCorked();
}

/// <summary>
/// Corking, as uWebSockets does it: one turn of an event loop (one batch of readiness events)
/// runs the continuations of every connection that became ready; what they send waits in each
/// connection's output, and each connection written to is flushed once when the turn ends. So
/// k echoes answered in one turn are one write. A turn belongs to one thread: no lock.
/// </summary>
internal sealed class LoopTurn
{
    [ThreadStatic] private static LoopTurn? t_current;
    [ThreadStatic] private static LoopTurn? t_batch;   // this thread's turn for SendBatch, made once
    private readonly List<ICorked> _corked = [];
    // False once ended. A SendBatch ended on another thread than it began (after an await) leaves
    // t_current pointing here on the first thread: a closed turn is then ignored, never filled.
    private volatile bool _open;

    /// <summary>
    /// In the middle of a turn on this thread: leaves <paramref name="item"/>'s flush to the end
    /// of the turn (the caller adds each item once until it is flushed) and returns true.
    /// Elsewhere false: the caller flushes now.
    /// </summary>
    public static bool TryCork(ICorked item)
    {
        var turn = t_current;
        if (turn is null || !turn._open)
            return false;
        turn._corked.Add(item);
        return true;
    }

    public void Begin()
    {
        _open = true;
        t_current = this;
    }

    /// <summary>
    /// A turn on a thread that is not a loop's (SendBatch): null when this thread is in a turn
    /// already, whose end flushes what the batch gathers.
    /// </summary>
    public static LoopTurn? BeginOnThisThread()
    {
        if (t_current is { _open: true })
            return null;
        var turn = t_batch ??= new LoopTurn();
        turn.Begin();
        return turn;
    }

    /// <summary>Ends the turn: flushes every connection written to during it.</summary>
    public void End()
    {
        _open = false;
        if (t_current == this)
            t_current = null;
        try
        {
            for (int i = 0; i < _corked.Count; i++)
                _corked[i].FlushCorked();
        }
        catch (Exception e)
        {
            // FlushCorked handles transport failures itself; anything else is a bug that must not pass silently.
            Environment.FailFast("Duplex event loop: a corked flush threw", e);
        }
        _corked.Clear();
    }
}

using Duplex.Transport;

namespace Duplex;

/// <summary>
/// Gathers the sends made on this thread until it is disposed, and then writes each connection
/// sent to once: a broadcast of k messages to n connections from a timer, a queue reader or any
/// thread that is not an event loop's costs n writes, not k × n. (On an event loop's thread this
/// already happens for every turn, and a batch begun there changes nothing.)
/// </summary>
/// <remarks>
/// Between <see cref="Begin"/> and <see cref="Dispose"/> stay on one thread: do not await
/// anything that may resume elsewhere. The sends made inside complete at once (their bytes wait in
/// each connection's output, up to 64 KiB, past which a connection is written at once); a write
/// that fails at the end aborts its connection, as a failed send would.
/// <code>
/// using (SendBatch.Begin())
///     foreach (var connection in connections)
///         _ = connection.SendAsync(prepared);
/// </code>
/// </remarks>
public readonly struct SendBatch : IDisposable
{
    private readonly LoopTurn? _turn;

    private SendBatch(LoopTurn? turn) => _turn = turn;

    /// <summary>Starts gathering this thread's sends.</summary>
    public static SendBatch Begin() => new(LoopTurn.BeginOnThisThread());

    /// <summary>Writes every connection sent to since <see cref="Begin"/>.</summary>
    public void Dispose() => _turn?.End();
}

using System.Buffers;

namespace Duplex.Protocol;

/// <summary>
/// Who may write where among received bytes: the payload lent to the application, and the one
/// message read ahead for it (by keep-alive) that it has not taken yet.
/// </summary>
/// <remarks>
/// The lending rule, which this type exists to keep:
/// <list type="bullet">
/// <item>A payload handed to the application (<see cref="Lend"/>) is written by nobody until the
/// application asks for its next message (<see cref="Reclaim"/>) — not by a close, a keep-alive
/// read, a dispose or an abort.</item>
/// <item>Reading on for any other reason first calls <see cref="Detach"/>: when the lent payload
/// lives in the reader's buffer, that buffer stays with the loan and the reader goes on in a fresh
/// one (holding copies of the bytes not yet parsed).</item>
/// <item>A loan ends at <see cref="Reclaim"/> (its buffer goes back to the pool) or is given up at
/// <see cref="Dispose"/>: the buffer is then left to the garbage collector, never to the pool,
/// since the application may still be reading it.</item>
/// <item>At most two messages are held (read ahead, not yet delivered): one copied out of the
/// reader's buffer and one still in it. With two held, reading ahead stops until the application
/// takes one. Memory stays bounded by one lent payload plus two held messages.</item>
/// </list>
/// Not thread-safe: used by one receiver at a time.
/// </remarks>
internal sealed class Inbox(MessageReader reader) : IDisposable
{
    private enum LoanKind : byte { None, InReader, OwnBuffer }

    private LoanKind _loan;
    private byte[]? _loanBuffer;       // OwnBuffer: a detached reader buffer or an inflated payload (pooled)

    // Held messages, oldest first: at most one copied out of the reader (pooled) and one still in it.
    private HeldMessage _heldCopy;
    private HeldMessage _heldInReader;

    private struct HeldMessage
    {
        public bool Present;
        public Opcode Type;
        public bool Compressed;
        public ReadOnlyMemory<byte> Payload;
        public byte[]? Buffer;      // the pooled copy, for the copied one
    }

    /// <summary>True while a message read ahead waits for the application.</summary>
    public bool HasHeld => _heldCopy.Present || _heldInReader.Present;

    /// <summary>True when two messages wait for the application: reading ahead stops until it takes one.</summary>
    public bool IsFull => _heldCopy.Present && _heldInReader.Present;

    /// <summary>
    /// Lends a payload to the application: <paramref name="pooledBuffer"/> when it lives in a
    /// buffer of its own (an inflated message, from the shared pool), null when it lives in the
    /// reader's buffer.
    /// </summary>
    public void Lend(byte[]? pooledBuffer)
    {
        Reclaim();
        if (pooledBuffer is null)
        {
            _loan = LoanKind.InReader;
        }
        else
        {
            _loan = LoanKind.OwnBuffer;
            _loanBuffer = pooledBuffer;
        }
    }

    /// <summary>The application asked for its next message: what it held is ours again.</summary>
    public void Reclaim()
    {
        if (_loanBuffer is { Length: > 0 } buffer)
            ArrayPool<byte>.Shared.Return(buffer);
        _loanBuffer = null;
        _loan = LoanKind.None;
    }

    /// <summary>
    /// Before reading on for anything but the application's next receive: moves a payload lent
    /// from the reader's buffer out of the reader's way.
    /// </summary>
    public void Detach()
    {
        if (_loan != LoanKind.InReader)
            return;
        _loanBuffer = reader.DetachBuffer();
        _loan = LoanKind.OwnBuffer;
    }

    /// <summary>
    /// Before reading ahead: moves a lent payload out of the reader's way, and copies a held
    /// message out of the reader so that it can read on. False when full: read no further.
    /// </summary>
    public bool PrepareReadAhead()
    {
        Detach();
        if (!_heldInReader.Present)
            return true;
        if (_heldCopy.Present)
            return false;
        var payload = _heldInReader.Payload;
        var copy = ArrayPool<byte>.Shared.Rent(Math.Max(1, payload.Length));
        payload.CopyTo(copy);
        _heldCopy = _heldInReader with { Payload = copy.AsMemory(0, payload.Length), Buffer = copy };
        _heldInReader = default;
        return true;
    }

    /// <summary>Keeps the message the reader just completed for the application's next receive.</summary>
    public void Hold(Opcode type, bool compressed, ReadOnlyMemory<byte> payload)
    {
        if (_heldInReader.Present)
            throw new InvalidOperationException("A message is already held in the reader.");
        _heldInReader = new HeldMessage { Present = true, Type = type, Compressed = compressed, Payload = payload };
    }

    /// <summary>
    /// Takes the oldest held message, if any. <paramref name="buffer"/> is its pooled copy (the
    /// caller lends or returns it), or null when it still lives in the reader's buffer.
    /// </summary>
    public bool TryTakeHeld(out Opcode type, out bool compressed, out ReadOnlyMemory<byte> payload, out byte[]? buffer)
    {
        ref var held = ref _heldCopy.Present ? ref _heldCopy : ref _heldInReader;
        type = held.Type;
        compressed = held.Compressed;
        payload = held.Payload;
        buffer = held.Buffer;
        if (!held.Present)
            return false;
        held = default;
        return true;
    }

    /// <summary>Drops held messages unread (the connection is closing: nobody will take them).</summary>
    public void DropHeld()
    {
        if (_heldCopy.Buffer is { } copy)
            ArrayPool<byte>.Shared.Return(copy);
        _heldCopy = default;
        _heldInReader = default;
    }

    /// <summary>
    /// Frees what is ours. A payload still lent is given up to the garbage collector, with the
    /// reader's buffer when it lives there: the application may read it after this.
    /// </summary>
    public void Dispose()
    {
        DropHeld();
        switch (_loan)
        {
            case LoanKind.InReader:
                reader.DetachBuffer(); // left to the GC with the loan
                break;
            case LoanKind.OwnBuffer:
                _loanBuffer = null;    // likewise
                break;
        }
        _loan = LoanKind.None;
        reader.Dispose();
    }
}

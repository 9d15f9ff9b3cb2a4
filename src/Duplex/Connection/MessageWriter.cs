using Duplex.Protocol;

namespace Duplex;

/// <summary>
/// Sends one message in pieces, as a series of frames, for a message whose length is not known
/// up front. Get one from <see cref="WebSocketConnection.BeginMessageAsync"/>; end it with
/// <see cref="CompleteAsync"/> (disposing without completing ends it with an empty final frame).
/// </summary>
public sealed class MessageWriter : IAsyncDisposable
{
    private readonly WebSocketConnection _connection;
    private readonly Opcode _opcode;
    private Utf8Validator _utf8;
    private bool _started;
    private bool _completed;

    internal MessageWriter(WebSocketConnection connection, Opcode opcode)
    {
        _connection = connection;
        _opcode = opcode;
    }

    /// <summary>Sends the next piece as a non-final frame. Text may be split anywhere, even inside a character.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        SendAsync(data, fin: false, cancellationToken);

    /// <summary>Sends the last piece (possibly empty) and ends the message.</summary>
    public ValueTask CompleteAsync(ReadOnlyMemory<byte> data = default, CancellationToken cancellationToken = default) =>
        SendAsync(data, fin: true, cancellationToken);

    private async ValueTask SendAsync(ReadOnlyMemory<byte> data, bool fin, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (_opcode == Opcode.Text)
        {
            // Checked on a copy, so that a refused piece leaves the writer as it was.
            var utf8 = _utf8;
            if (!utf8.Append(data.Span) || (fin && !utf8.IsComplete))
                throw new ArgumentException("Text messages must be valid UTF-8.", nameof(data));
            _utf8 = utf8;
        }
        try
        {
            await _connection.SendFragmentAsync(_started ? Opcode.Continuation : _opcode, fin, data, cancellationToken).ConfigureAwait(false);
            _started = true;
        }
        catch
        {
            Finish();
            throw;
        }
        if (fin)
            Finish();
    }

    private void Finish()
    {
        if (_completed)
            return;
        _completed = true;
        _connection.ReleaseMessage();
    }

    /// <summary>Ends the message with an empty final frame if <see cref="CompleteAsync"/> was not called, so the connection can send again.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_completed)
            return;
        if (!_utf8.IsComplete)
        {
            // The text ends inside a character: no valid end can be sent, so the connection goes.
            Finish();
            _connection.Abort();
            return;
        }
        try
        {
            await CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketClosedException or ArgumentException or OperationCanceledException)
        {
            Finish();
        }
    }
}

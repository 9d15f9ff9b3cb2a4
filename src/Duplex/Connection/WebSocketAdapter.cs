using System.Net.WebSockets;
using Duplex.Protocol;

namespace Duplex;

public sealed partial class WebSocketConnection
{
    /// <summary>
    /// This connection as a <see cref="System.Net.WebSockets.WebSocket"/>, for code written
    /// against <c>ClientWebSocket</c> or ASP.NET Core's WebSocket: receives may take a message in
    /// pieces into the caller's buffer, sends may build one from pieces (<c>endOfMessage: false</c>).
    /// Duplex still answers the peer's close itself, so after a receive returns
    /// <see cref="WebSocketMessageType.Close"/> the handshake is done and <c>CloseAsync</c> or
    /// <c>CloseOutputAsync</c> has nothing left to do (they return at once). Disposing the
    /// adapter aborts the connection if it is still open, as <c>ManagedWebSocket</c> does.
    /// </summary>
    public System.Net.WebSockets.WebSocket AsWebSocket() => new WebSocketAdapter(this);

    // For CloseOutputAsync: the close frame goes out, and the application goes on receiving.
    internal ValueTask SendCloseOnlyAsync(CloseStatus status, string? reason)
    {
        _ = CloseFrame.Write(new byte[125], status, reason); // a bad argument throws before anything is sent
        return IsClosed ? default : SendCloseAsync(status, reason);
    }
}

// The System.Net.WebSockets view of a connection. One receiver and one sender at a time, as
// WebSocket requires of its callers: the fields of each side are touched only by that side.
internal sealed class WebSocketAdapter(WebSocketConnection connection) : System.Net.WebSockets.WebSocket
{
    // Receive side: the message being handed out in pieces, and how far.
    private WebSocketMessage _current;
    private int _taken;
    private bool _holding;
    private (WebSocketCloseStatus Status, string? Reason)? _peerClose;
    // Send side: a message being sent in pieces (endOfMessage: false), or null.
    private MessageWriter? _writer;
    private bool _aborted;

    public override WebSocketCloseStatus? CloseStatus =>
        _peerClose?.Status ?? (connection.CloseStatus is { } status ? (WebSocketCloseStatus)(int)status : null);

    public override string? CloseStatusDescription => _peerClose is { } peer ? peer.Reason : connection.CloseReason;

    public override string? SubProtocol => connection.SubProtocol;

    public override WebSocketState State => _aborted ? WebSocketState.Aborted : connection.State switch
    {
        ConnectionState.Open => WebSocketState.Open,
        ConnectionState.CloseSent => WebSocketState.CloseSent,
        ConnectionState.CloseReceived => WebSocketState.CloseReceived,
        _ => connection.CloseStatus == Protocol.CloseStatus.AbnormalClosure ? WebSocketState.Aborted : WebSocketState.Closed,
    };

    public override async Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken)
    {
        var result = await ReceiveAsync(buffer.AsMemory(), cancellationToken).ConfigureAwait(false);
        return result.MessageType == WebSocketMessageType.Close
            ? new WebSocketReceiveResult(0, WebSocketMessageType.Close, true, CloseStatus, CloseStatusDescription)
            : new WebSocketReceiveResult(result.Count, result.MessageType, result.EndOfMessage);
    }

    public override async ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (!_holding)
        {
            var message = await connection.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            if (message.IsClose)
            {
                _peerClose ??= ((WebSocketCloseStatus)(int)message.CloseStatus, message.CloseReason);
                if (message.CloseStatus == Protocol.CloseStatus.AbnormalClosure)
                    throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, message.CloseReason);
                return new ValueWebSocketReceiveResult(0, WebSocketMessageType.Close, true);
            }
            _current = message; // lent until the connection's next receive, which only this side makes
            _taken = 0;
            _holding = true;
        }
        var rest = _current.Payload[_taken..];
        int count = Math.Min(rest.Length, buffer.Length);
        rest[..count].CopyTo(buffer);
        _taken += count;
        bool end = _taken == _current.Payload.Length;
        var type = _current.Type == MessageType.Text ? WebSocketMessageType.Text : WebSocketMessageType.Binary;
        if (end)
        {
            _holding = false;
            _current = default;
        }
        return new ValueWebSocketReceiveResult(count, type, end);
    }

    public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        SendAsync(buffer.AsMemory(), messageType, endOfMessage, cancellationToken).AsTask();

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage,
        CancellationToken cancellationToken)
    {
        if (messageType == WebSocketMessageType.Close)
            throw new ArgumentException("Close frames are sent with CloseAsync or CloseOutputAsync.", nameof(messageType));
        var type = messageType == WebSocketMessageType.Text ? MessageType.Text : MessageType.Binary;
        try
        {
            if (_writer is null && endOfMessage)
            {
                await connection.SendAsync(buffer, type, cancellationToken).ConfigureAwait(false);
                return;
            }
            _writer ??= await connection.BeginMessageAsync(type, cancellationToken).ConfigureAwait(false);
            if (!endOfMessage)
            {
                await _writer.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
                return;
            }
            var writer = _writer;
            _writer = null;
            await writer.CompleteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (WebSocketClosedException e)
        {
            throw new WebSocketException(WebSocketError.InvalidState, e.Message, e);
        }
    }

    public override async Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        if (connection.State != ConnectionState.Closed)
            await connection.CloseAsync((CloseStatus)(int)closeStatus, statusDescription, cancellationToken).ConfigureAwait(false);
    }

    public override async Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await connection.SendCloseOnlyAsync((CloseStatus)(int)closeStatus, statusDescription).ConfigureAwait(false);
    }

    public override void Abort()
    {
        _aborted = connection.State != ConnectionState.Closed;
        connection.Abort();
    }

    public override void Dispose()
    {
        if (connection.State != ConnectionState.Closed)
            Abort();
        _ = connection.DisposeAsync().AsTask();
    }
}

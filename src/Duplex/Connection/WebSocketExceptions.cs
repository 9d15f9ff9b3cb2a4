namespace Duplex;

/// <summary>An operation was attempted on a connection that has closed or is closing.</summary>
public sealed class WebSocketClosedException : InvalidOperationException
{
    /// <summary>Creates the exception with what was attempted and, when there is one, the failure behind it.</summary>
    public WebSocketClosedException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The opening handshake failed: the server refused, or answered something that is not a WebSocket upgrade.</summary>
public sealed class WebSocketHandshakeException : Exception
{
    /// <summary>Creates the exception with what went wrong, the HTTP status when the server answered one, and any failure behind it.</summary>
    public WebSocketHandshakeException(string message, int? statusCode = null, Exception? inner = null) : base(message, inner)
    {
        StatusCode = statusCode;
    }

    /// <summary>The HTTP status the server answered with, when it answered.</summary>
    public int? StatusCode { get; }
}

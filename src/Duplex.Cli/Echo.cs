using Duplex.Server;

namespace Duplex.Cli;

/// <summary>Sends every message back with its type: `duplex serve`'s /echo, the Autobahn client driver, and tests.</summary>
public static class Echo
{
    /// <summary>A route handler that echoes until the connection closes.</summary>
    public static WebSocketHandler Handler { get; } = (connection, _, _) => RunAsync(connection);

    /// <summary>Echoes on any connection, client or server, until it closes; returns how it closed.</summary>
    public static async Task<WebSocketMessage> RunAsync(WebSocketConnection connection)
    {
        while (true)
        {
            var message = await connection.ReceiveAsync(CancellationToken.None).ConfigureAwait(false);
            if (message.IsClose)
                return message;
            try
            {
                // The payload is already checked (text is valid UTF-8), so it goes back as it came.
                if (message.Type == MessageType.Text)
                    await connection.SendTextAsync(message.Payload, CancellationToken.None).ConfigureAwait(false);
                else
                    await connection.SendBinaryAsync(message.Payload, CancellationToken.None).ConfigureAwait(false);
            }
            catch (WebSocketClosedException)
            {
                // The peer started closing while we echoed: the next receive finishes the close.
            }
            message = default; // hold no payload while waiting for the next message
        }
    }
}

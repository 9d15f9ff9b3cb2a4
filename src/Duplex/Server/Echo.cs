namespace Duplex.Server;

/// <summary>A ready-made handler that sends every message back with its type (for tests, conformance suites and demos).</summary>
public static class Echo
{
    public static WebSocketHandler Handler { get; } = RunAsync;

    private static async Task RunAsync(WebSocketConnection connection, WebSocketRequest request, CancellationToken stopping)
    {
        while (true)
        {
            var message = await connection.ReceiveAsync(CancellationToken.None).ConfigureAwait(false);
            if (message.IsClose)
                return;
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
        }
    }
}

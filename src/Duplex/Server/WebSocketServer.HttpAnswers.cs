using System.Buffers;
using System.Net.Sockets;
using Duplex.Protocol;

namespace Duplex.Server;

// Plain HTTP answers: routes made with MapHttp, refusals with their status, and the lingering
// close after an answer.
public sealed partial class WebSocketServer
{
    private static async Task ServeHttpAsync(Stream stream, HttpRequestHead head, Func<HttpRequestHead, ValueTask<HttpReply>> handler)
    {
        if (head.Method is not ("GET" or "HEAD"))
        {
            await RespondAsync(stream, new HttpRejection(405, "method not allowed", [new("Allow", "GET, HEAD")])).ConfigureAwait(false);
            return;
        }
        var reply = await handler(head).ConfigureAwait(false);
        byte[] bytes = ServerHandshake.BuildResponse(reply.StatusCode, reply.Body, reply.Headers, reply.ContentType);
        if (head.Method == "HEAD")
            bytes = bytes.AsSpan(0, bytes.AsSpan().IndexOf("\r\n\r\n"u8) + 4).ToArray();
        await stream.WriteAsync(bytes).ConfigureAwait(false);
    }

    // After an HTTP answer: end our side, then read what the client still sends for a moment,
    // so that unread request bytes do not make the close a reset that destroys the answer.
    private static async Task LingerAsync(Stream stream, Socket socket)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            socket.Shutdown(SocketShutdown.Send);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            int discarded = 0;
            while (discarded < 64 * 1024)
            {
                int read = await stream.ReadAsync(scratch, timeout.Token).ConfigureAwait(false);
                if (read == 0)
                    break;
                discarded += read;
            }
        }
        catch (Exception e) when (Transport.Transport.IsFailure(e) || e is OperationCanceledException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static Task RespondAsync(Stream stream, int statusCode, string message) =>
        RespondAsync(stream, new HttpRejection(statusCode, message));

    private static async Task RespondAsync(Stream stream, HttpRejection rejection)
    {
        byte[] bytes = ServerHandshake.BuildResponse(rejection.StatusCode, rejection.Message + "\n", rejection.Headers);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await stream.WriteAsync(bytes, timeout.Token).ConfigureAwait(false);
    }
}

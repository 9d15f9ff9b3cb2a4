using System.Net.Sockets;
using Duplex.Protocol;

namespace Duplex.Cli.Bench;

/// <summary>
/// The load generator's connections: Duplex's own public client, on the event loop where there
/// is one (Linux x86-64), so that what a generator sends in one loop turn goes out in one write
/// and its reads complete on the loop thread. Works against any WebSocket server.
/// </summary>
internal static class BenchClient
{
    // Flows with the run that set it: runs in one process (the tests run many at once) do not see each other's.
    private static readonly AsyncLocal<bool> s_acceptAnyCertificate = new();

    /// <summary>wss:// with any certificate (`--insecure`, for self-signed test servers). Set before a run starts, for that run.</summary>
    public static bool AcceptAnyCertificate
    {
        get => s_acceptAnyCertificate.Value;
        set => s_acceptAnyCertificate.Value = value;
    }

    /// <summary>No keep-alive pings of our own (they would be noise); permessage-deflate when asked.</summary>
    public static WebSocketClientOptions Options(bool compress = false) => new()
    {
        KeepAliveInterval = TimeSpan.Zero,
        MaxMessageSize = 64L << 20,
        Compression = compress ? new PerMessageDeflateOptions { Threshold = 0 } : null,
        AllowUntrustedCertificate = AcceptAnyCertificate,
    };

    public static Task<WebSocketConnection> ConnectAsync(Uri uri, CancellationToken stop, bool compress = false) =>
        WebSocketClient.ConnectAsync(uri, Options(compress), stop);

    /// <summary>Opens connections, a bounded number of handshakes at a time (a burst of 10,000 SYNs would overflow the backlog).</summary>
    public static async Task<(WebSocketConnection?[] Connections, int Errors, Exception? FirstError)> OpenAsync(
        Uri uri, int count, Func<WebSocketConnection, Task>? then, Action<int>? progress, CancellationToken stop, bool compress = false)
    {
        var connections = new WebSocketConnection?[count];
        int errors = 0, opened = 0;
        Exception? first = null;
        using var gate = new SemaphoreSlim(64);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync(stop);
            try
            {
                var ws = await ConnectAsync(uri, stop, compress);
                connections[i] = ws;
                if (then is not null)
                    await then(ws);
                if (Interlocked.Increment(ref opened) % 1000 == 0)
                    progress?.Invoke(opened);
            }
            catch (Exception e) when (IsFailure(e))
            {
                Interlocked.Increment(ref errors);
                Interlocked.CompareExchange(ref first, e, null);
            }
            finally
            {
                gate.Release();
            }
        }));
        return (connections, errors, first);
    }

    /// <summary>Ends connections the way a client should: close frame 1000 both ways, then TCP.</summary>
    public static Task CloseAllAsync(IEnumerable<WebSocketConnection?> connections) =>
        Task.WhenAll(connections.Where(c => c is not null).Select(c => CloseAsync(c!)));

    public static async Task CloseAsync(WebSocketConnection ws)
    {
        try
        {
            await ws.CloseAsync(CloseStatus.NormalClosure, "bench done");
        }
        catch (Exception e) when (IsFailure(e) || e is OperationCanceledException)
        {
        }
        await ws.DisposeAsync();
    }

    /// <summary>What a connection or the server can do to a load run: counted as an error, never thrown.</summary>
    public static bool IsFailure(Exception e) =>
        e is SocketException or IOException or WebSocketHandshakeException or WebSocketClosedException or TimeoutException;

    /// <summary>"no connection could be opened", with the reason (a 404 says so).</summary>
    public static IOException NoConnection(Uri uri, Exception? first) =>
        new($"no connection to {uri} could be opened{(first is null ? "" : ": " + first.Message)}");
}

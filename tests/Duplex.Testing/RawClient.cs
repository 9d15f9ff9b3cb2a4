using System.Net;
using System.Net.Sockets;
using System.Text;
using Duplex.Protocol;

namespace Duplex.Testing;

/// <summary>A test client at the byte level: it sends any bytes, valid or not, and reads raw frames and responses.</summary>
public sealed class RawClient : IAsyncDisposable
{
    private readonly Socket _socket;

    private RawClient(Socket socket)
    {
        _socket = socket;
        Stream = new NetworkStream(socket, ownsSocket: true);
    }

    public NetworkStream Stream { get; }

    public Socket Socket => _socket;

    /// <summary>Connects, from <paramref name="from"/> when given (another loopback address, 127.0.0.2 say).</summary>
    public static async Task<RawClient> ConnectAsync(IPEndPoint endPoint, IPAddress? from = null)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (from is not null)
            socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(endPoint);
        return new RawClient(socket);
    }

    /// <summary>Connects and completes a valid upgrade on <paramref name="path"/>.</summary>
    public static async Task<RawClient> UpgradeAsync(IPEndPoint endPoint, string path = "/echo", string? extraHeaders = null)
    {
        var client = await ConnectAsync(endPoint);
        string key = Handshake.CreateKey();
        await client.SendAsync(UpgradeRequest(endPoint, path, key, extraHeaders));
        string response = await client.ReadHeadAsync();
        if (!response.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            throw new InvalidOperationException("upgrade refused: " + response);
        if (!response.Contains("Sec-WebSocket-Accept: " + Handshake.ComputeAccept(key), StringComparison.Ordinal))
            throw new InvalidOperationException("bad accept: " + response);
        client.UpgradeResponse = response;
        return client;
    }

    /// <summary>The 101 response head, after <see cref="UpgradeAsync"/>.</summary>
    public string UpgradeResponse { get; private set; } = "";

    /// <summary>The value of a header in the 101 response, or null.</summary>
    public string? ResponseHeader(string name) =>
        UpgradeResponse.Split("\r\n").FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))?[(name.Length + 1)..].Trim();

    public static string UpgradeRequest(IPEndPoint endPoint, string path, string key, string? extraHeaders = null) =>
        $"GET {path} HTTP/1.1\r\nHost: {endPoint}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extraHeaders}\r\n";

    public Task SendAsync(string text) => SendAsync(Encoding.Latin1.GetBytes(text));

    public async Task SendAsync(byte[] bytes) => await Stream.WriteAsync(bytes);

    /// <summary>Sends bytes in pieces of <paramref name="chunk"/> bytes, each its own write.</summary>
    public async Task SendInPiecesAsync(byte[] bytes, int chunk)
    {
        for (int i = 0; i < bytes.Length; i += chunk)
        {
            await Stream.WriteAsync(bytes.AsMemory(i, Math.Min(chunk, bytes.Length - i)));
            await Stream.FlushAsync();
        }
    }

    /// <summary>Reads an HTTP head (up to the blank line), byte by byte so no frame byte is taken.</summary>
    public async Task<string> ReadHeadAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var head = new List<byte>();
        var one = new byte[1];
        while (!EndsWithBlankLine(head))
        {
            int n = await Stream.ReadAsync(one, cts.Token);
            if (n == 0)
                break;
            head.Add(one[0]);
        }
        return Encoding.Latin1.GetString(head.ToArray());
    }

    /// <summary>Reads everything until the server closes (for HTTP answers).</summary>
    public async Task<string> ReadToEndAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var all = new MemoryStream();
        await Stream.CopyToAsync(all, cts.Token);
        return Encoding.UTF8.GetString(all.ToArray());
    }

    private static bool EndsWithBlankLine(List<byte> head) =>
        head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n';

    public async Task<RawFrame?> ReadFrameAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        return await RawFrame.ReadAsync(Stream, cts.Token);
    }

    /// <summary>Reads frames until a close frame arrives (skipping others); null if the stream ends first.</summary>
    public async Task<RawFrame?> ReadCloseAsync(TimeSpan? timeout = null)
    {
        while (await ReadFrameAsync(timeout) is { } frame)
        {
            if (frame.Opcode == Opcode.Close)
                return frame;
        }
        return null;
    }

    /// <summary>True when the server ends the TCP connection (FIN or reset) within the time given.</summary>
    public async Task<bool> WaitForEndAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var buffer = new byte[4096];
        try
        {
            while (await Stream.ReadAsync(buffer, cts.Token) > 0)
            {
            }
            return true;
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void ShutdownSend() => _socket.Shutdown(SocketShutdown.Send);

    public async ValueTask DisposeAsync() => await Stream.DisposeAsync();
}

using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Duplex.Testing;

/// <summary>
/// A small HTTP CONNECT proxy on loopback, as tests need one: it records each request's target
/// and Proxy-Authorization, can demand credentials (407), and pipes bytes both ways.
/// </summary>
public sealed class ConnectProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    /// <param name="requiredAuthorization">When set, the exact Proxy-Authorization value without which the answer is 407.</param>
    public ConnectProxy(string? requiredAuthorization = null)
    {
        RequiredAuthorization = requiredAuthorization;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public string? RequiredAuthorization { get; }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public Uri Uri => new($"http://127.0.0.1:{Port}");

    /// <summary>Each CONNECT seen: its target (host:port) and its Proxy-Authorization, if any.</summary>
    public ConcurrentQueue<(string Target, string? Authorization)> Requests { get; } = new();

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                _ = ServeAsync(client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        try
        {
            string head = await ReadHeadAsync(stream);
            var lines = head.Split("\r\n");
            var parts = lines[0].Split(' ');
            string? authorization = lines.Skip(1).Where(l => l.StartsWith("Proxy-Authorization:", StringComparison.OrdinalIgnoreCase))
                .Select(l => l[(l.IndexOf(':') + 1)..].Trim()).FirstOrDefault();
            Requests.Enqueue((parts[1], authorization));
            if (parts[0] != "CONNECT")
            {
                await Answer(stream, "405 Method Not Allowed");
                return;
            }
            if (RequiredAuthorization is not null && authorization != RequiredAuthorization)
            {
                await Answer(stream, "407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"");
                return;
            }
            int colon = parts[1].LastIndexOf(':');
            using var server = new TcpClient();
            await server.ConnectAsync(parts[1][..colon].Trim('[', ']'), int.Parse(parts[1][(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            await Answer(stream, "200 Connection Established");
            var upstream = server.GetStream();
            var up = stream.CopyToAsync(upstream, _stop.Token);
            var down = upstream.CopyToAsync(stream, _stop.Token);
            await Task.WhenAny(up, down);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private static Task Answer(Stream stream, string status) =>
        stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n")).AsTask();

    // Byte by byte up to the blank line, so that nothing of the tunnelled bytes is read here.
    private static async Task<string> ReadHeadAsync(Stream stream)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one) == 0)
                throw new IOException("closed in the head");
            head.Append((char)one[0]);
        }
        return head.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}

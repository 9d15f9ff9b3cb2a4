using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;

namespace Duplex.Conformance.Tests;

/// <summary>
/// A stand-in for the Autobahn TestSuite's fuzzingserver, speaking its driver protocol so that a
/// client under test (the library's echo client, or `duplex autobahn-client`) is driven exactly
/// as the real tool drives it: /getCaseCount sends the number of cases, /runCase?case=N&amp;agent=A
/// plays case N (1-based) at the client, /updateReports?agent=A closes. Results are kept per case.
/// </summary>
public sealed class FuzzingServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IReadOnlyList<ConformanceCase> _cases;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public FuzzingServer(IReadOnlyList<ConformanceCase> cases)
    {
        _cases = cases;
        _listener.Start();
        _loop = AcceptLoopAsync();
    }

    public Uri BaseUri => new($"ws://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

    /// <summary>Outcome of each case played: null for a pass, else why it failed.</summary>
    public ConcurrentDictionary<int, string?> Results { get; } = new();

    public ConcurrentDictionary<string, int> ReportUpdates { get; } = new();

    /// <summary>Case numbers whose upgrade gets a bad 101 (no Sec-WebSocket-Accept), as a broken server would send.</summary>
    public HashSet<int> BadUpgrades { get; } = [];

    /// <summary>Completes when the case with this number has been played.</summary>
    public async Task<string?> WaitForResultAsync(int caseNumber, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Results.TryGetValue(caseNumber, out var result))
                return result;
            await Task.Delay(5);
        }
        throw new TimeoutException($"case {caseNumber} was not played");
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using var owned = socket;
        socket.NoDelay = true;
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var head = await ReadHeadAsync(stream);
        if (head is null || !ServerHandshake.TryValidate(head, out var request, out _))
            return;
        var query = ParseQuery(head.Query);
        if (head.Path == "/runCase" && BadUpgrades.Contains(int.Parse(query["case"])))
        {
            await stream.WriteAsync("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"u8.ToArray());
            return;
        }
        // A compression case answers the client's permessage-deflate offer with the case's parameters.
        string? extensions = null;
        if (head.Path == "/runCase" && _cases[int.Parse(query["case"]) - 1].Extensions is { } parameters
            && request!.Extensions.Any(e => e.Name == DeflateNegotiation.Name))
            extensions = parameters;
        await stream.WriteAsync(ServerHandshake.BuildAcceptResponse(request!.Key, null, extensions));
        var fuzzer = new Fuzzer(stream, socket, isClient: false);
        if (extensions is not null)
            fuzzer.UseCompression(ServerRole.Agreed(extensions));
        switch (head.Path)
        {
            case "/getCaseCount":
                await fuzzer.SendTextAsync(_cases.Count.ToString());
                await CloseQuietlyAsync(fuzzer);
                break;
            case "/runCase":
                int number = int.Parse(query["case"]);
                string? failure = null;
                try
                {
                    await _cases[number - 1].Run(fuzzer);
                }
                catch (Exception e)
                {
                    failure = e is ConformanceException ? e.Message : e.ToString();
                }
                Results[number] = failure;
                break;
            case "/updateReports":
                ReportUpdates.AddOrUpdate(query.GetValueOrDefault("agent", ""), 1, (_, n) => n + 1);
                await CloseQuietlyAsync(fuzzer);
                break;
        }
    }

    private static async Task CloseQuietlyAsync(Fuzzer fuzzer)
    {
        try
        {
            await fuzzer.CloseNormallyAsync();
        }
        catch (ConformanceException)
        {
        }
    }

    private static Dictionary<string, string> ParseQuery(string query) =>
        query.Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => Uri.UnescapeDataString(p[0]), p => p.Length > 1 ? Uri.UnescapeDataString(p[1]) : "");

    // Reads the upgrade request byte by byte, so that no frame byte is consumed with it.
    private static async Task<HttpRequestHead?> ReadHeadAsync(Stream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            if (await stream.ReadAsync(one, timeout.Token) == 0)
                return null;
            bytes.Add(one[0]);
            if (bytes.Count >= 4 && bytes[^1] == '\n' && bytes[^2] == '\r' && bytes[^3] == '\n')
            {
                var status = HttpHeadParser.TryParseRequest(bytes.ToArray(), HttpHeadLimits.Default, out var head, out _, out _);
                return status == OperationStatus.Done ? head : null;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _loop;
    }
}

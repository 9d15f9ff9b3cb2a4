using Duplex.Server;

namespace Duplex.Cli;

/// <summary>
/// `duplex autobahn-client`: the Autobahn TestSuite's client driver. It asks the fuzzingserver
/// for its case count, runs each case by echoing every message until the server closes, then
/// asks it to write its reports.
/// </summary>
internal static class AutobahnCommand
{
    public const string Help = """
        usage: duplex autobahn-client [--url ws://127.0.0.1:9001] [--agent duplex] [--cases FIRST-LAST]

        Drives the Duplex client through the Autobahn TestSuite. Start the suite's fuzzingserver
        (wstest -m fuzzingserver) first; its reports then list Duplex under the agent name.

        options:
          --url URL           where the fuzzingserver listens (default ws://127.0.0.1:9001)
          --agent NAME        the name the reports use (default duplex)
          --cases FIRST-LAST  run only these case numbers (default: all)
        """;

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken stop)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await console.Out.WriteLineAsync(Help);
            return 0;
        }
        var a = Arguments.Parse(args, ["url", "agent", "cases"], []);
        if (a.Positional.Count > 0)
            throw new UsageException($"unexpected argument '{a.Positional[0]}'");
        string url = a.Value("url") ?? "ws://127.0.0.1:9001";
        if (!Uri.TryCreate(url, UriKind.Absolute, out var baseUri) || baseUri.Scheme is not ("ws" or "wss"))
            throw new UsageException($"'{url}' is not a ws:// or wss:// URL");
        string agent = a.Value("agent") ?? "duplex";
        if (agent.Length == 0 || agent.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')))
            throw new UsageException($"--agent must be letters, digits, '-', '_' or '.', not '{agent}'");

        // Autobahn's cases go up to 16 MiB messages; pings of our own would only add noise.
        // permessage-deflate is offered, for cases 12.x and 13.x; other cases simply decline it.
        var options = new WebSocketClientOptions
        {
            KeepAliveInterval = TimeSpan.Zero,
            MaxMessageSize = 64L << 20,
            Compression = new PerMessageDeflateOptions { Threshold = 0 },
        };
        int count;
        await using (var ws = await WebSocketClient.ConnectAsync(Endpoint(baseUri, "getCaseCount", ""), options, stop))
        {
            var message = await ws.ReceiveAsync(stop);
            if (message.Type != MessageType.Text || !int.TryParse(message.GetText(), out count) || count < 0)
                throw new InvalidDataException("the fuzzingserver did not send a case count");
        }
        var (first, last) = ParseRange(a.Value("cases"), count);
        await console.Out.WriteLineAsync($"running cases {first}-{last} of {count} as agent '{agent}'");
        for (int number = first; number <= last; number++)
        {
            stop.ThrowIfCancellationRequested();
            WebSocketConnection ws;
            try
            {
                ws = await WebSocketClient.ConnectAsync(Endpoint(baseUri, "runCase", $"case={number}&agent={agent}"), options, stop);
            }
            catch (WebSocketHandshakeException e)
            {
                // Some cases answer the upgrade wrongly on purpose; refusing is the right answer,
                // and the suite records it. The other cases still run.
                await console.Out.WriteLineAsync($"case {number}/{count}: handshake refused: {e.Message}");
                continue;
            }
            await using (ws)
            {
                var closed = await Echo.RunAsync(ws);
                await console.Out.WriteLineAsync($"case {number}/{count}: closed {(int)closed.CloseStatus}");
            }
        }
        await using (var ws = await WebSocketClient.ConnectAsync(Endpoint(baseUri, "updateReports", $"agent={agent}"), options, stop))
            await ws.ReceiveAsync(stop);
        await console.Out.WriteLineAsync("reports updated");
        return 0;
    }

    private static Uri Endpoint(Uri baseUri, string path, string query) =>
        new UriBuilder(baseUri) { Path = path, Query = query }.Uri;

    private static (int First, int Last) ParseRange(string? text, int count)
    {
        if (text is null)
            return (1, count);
        var parts = text.Split('-');
        if (parts.Length is < 1 or > 2 || !int.TryParse(parts[0], out int first) || !int.TryParse(parts[^1], out int last)
            || first < 1 || last < first || last > count)
            throw new UsageException($"--cases must look like 1-{count} (within the server's {count} cases), not '{text}'");
        return (first, last);
    }
}

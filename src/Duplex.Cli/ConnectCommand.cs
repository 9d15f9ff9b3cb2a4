using System.Globalization;
using Duplex.Protocol;

namespace Duplex.Cli;

/// <summary>`duplex connect`: each line of input is sent as a text message; messages received are printed.</summary>
internal static class ConnectCommand
{
    public const string Help = """
        usage: duplex connect <ws://host:port/path | wss://… | host:port/path> [options]

        Sends each line of standard input as a text message and prints every message received
        (text as is, binary as hex or base64). At the end of input it closes with 1000, and so
        does Ctrl+C (a second Ctrl+C drops the connection at once). A close from the server ends
        it at once, whatever the input is doing. On a terminal, received lines are marked '< '.
        A URL without a scheme is ws://.

        options:
          -s, --subprotocol NAME       offer a subprotocol (repeatable, in order of preference)
          -H, --header 'Name: value'   send an extra request header (repeatable)
          -o, --origin ORIGIN          send an Origin header
          -x, --execute TEXT           send TEXT once connected (repeatable) instead of reading
                                       standard input, wait (--wait), then close with 1000
          -w, --wait SECONDS           with --execute: how long to wait for answers (default 2)
          -P, --show-ping-pong         print the pings and pongs received
          -n, --insecure               accept any TLS certificate (for self-signed test servers)
          --ping-interval SECONDS  send a ping after this much silence (default 30; 0 turns it off)
          --compress               offer permessage-deflate (compression) to the server
          --binary-format FORMAT   how binary messages are printed: hex (default) or base64
          --max-message-size N     largest message accepted, like 16m (default 16m)
          --connect-timeout SECONDS  time allowed for the connection and handshake (default 30)
          --slash                  treat lines starting with '/' as commands:
                                   /ping [text]  /close [code [reason]]  /binary <hex>

        exit status: 0 after a 1000 close; code-1000 for close codes 1001-1015 (so 1006,
        a connection lost without a close frame, gives 6); 16 for codes 3000-4999;
        64 for a bad command line; 69 when the connection could not be made.
        """;

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken stop)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await console.Out.WriteLineAsync(Help);
            return 0;
        }
        var a = Arguments.Parse(args,
            ["subprotocol", "header", "origin", "ping-interval", "binary-format", "max-message-size", "connect-timeout", "execute", "wait"],
            ["insecure", "slash", "compress", "show-ping-pong"],
            new Dictionary<string, string>
            {
                ["-s"] = "subprotocol", ["-H"] = "header", ["-o"] = "origin", ["-x"] = "execute", ["-w"] = "wait",
                ["-P"] = "show-ping-pong", ["-n"] = "insecure",
            });
        if (a.Positional.Count == 0)
            throw new UsageException("connect needs a URL, like ws://127.0.0.1:8080/echo");
        if (a.Positional.Count > 1)
            throw new UsageException($"unexpected argument '{a.Positional[1]}'");
        string target = a.Positional[0].Contains("://", StringComparison.Ordinal) ? a.Positional[0] : "ws://" + a.Positional[0];
        if (!Uri.TryCreate(target, UriKind.Absolute, out var uri) || uri.Scheme is not ("ws" or "wss"))
            throw new UsageException($"'{a.Positional[0]}' is not a ws:// or wss:// URL");
        if (a.Value("wait") is not null && a.All("execute").Count == 0)
            throw new UsageException("--wait goes with --execute");
        double wait = a.Seconds("wait", 2, 0, 86_400);
        string format = a.Value("binary-format") ?? "hex";
        if (format is not ("hex" or "base64"))
            throw new UsageException($"--binary-format must be hex or base64, not '{format}'");
        double ping = a.Seconds("ping-interval", 30, 0, 86400);
        var options = new WebSocketClientOptions
        {
            Origin = a.Value("origin"),
            AllowUntrustedCertificate = a.Flag("insecure"),
            KeepAliveInterval = ping == 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(ping),
            MaxMessageSize = a.Bytes("max-message-size", 16L << 20, 1, 1L << 31),
            ConnectTimeout = TimeSpan.FromSeconds(a.Seconds("connect-timeout", 30, 0.1, 3600)),
            Compression = a.Flag("compress") ? new PerMessageDeflateOptions() : null,
            // Lines are read from stdin synchronously: that must never happen on a loop thread.
            UseEventLoop = false,
        };
        foreach (var protocol in a.All("subprotocol"))
        {
            if (!IsToken(protocol))
                throw new UsageException($"'{protocol}' is not a valid subprotocol name");
            options.SubProtocols.Add(protocol);
        }
        foreach (var header in a.All("header"))
        {
            int colon = header.IndexOf(':');
            if (colon <= 0 || !IsToken(header[..colon]))
                throw new UsageException($"--header must look like 'Name: value', not '{header}'");
            options.Headers.Add(new(header[..colon].Trim(), header[(colon + 1)..].Trim()));
        }

        await using var ws = await WebSocketClient.ConnectAsync(uri, options, stop);
        await console.Error.WriteLineAsync($"connected to {uri}{(ws.SubProtocol is null ? "" : $" (subprotocol {ws.SubProtocol})")}{(ws.Compression is null ? "" : " (permessage-deflate)")}");
        if (a.Flag("show-ping-pong"))
        {
            ws.PingReceived = p => console.Error.WriteLine($"ping {System.Text.Encoding.UTF8.GetString(p.Span)}");
            ws.PongReceived = p => console.Error.WriteLine($"pong {System.Text.Encoding.UTF8.GetString(p.Span)}");
        }
        var printer = PrintAsync(ws, console, format == "hex");
        // Reading a terminal blocks a thread (Console.In has no truly asynchronous read): the
        // lines are read on one of their own, so that a close from the server or a Ctrl+C is
        // acted on at once, not after the next line is typed.
        var sender = a.All("execute") is { Count: > 0 } execute
            ? ExecuteAsync(ws, execute, TimeSpan.FromSeconds(wait), stop)
            : Task.Factory.StartNew(() => SendLinesAsync(ws, console, a.Flag("slash"), stop),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        var interrupted = new TaskCompletionSource();
        using (stop.Register(() => interrupted.TrySetResult()))
            await Task.WhenAny(printer, sender, interrupted.Task);
        if (!printer.IsCompleted)
        {
            // Input ended or Ctrl+C: close, then let the printer report the close.
            try
            {
                await ws.CloseAsync(CloseStatus.NormalClosure);
            }
            catch (WebSocketClosedException)
            {
            }
        }
        var close = await printer;
        await console.Error.WriteLineAsync($"closed: {(int)close.CloseStatus}{(string.IsNullOrEmpty(close.CloseReason) ? "" : " " + close.CloseReason)}");
        return ExitCodeFor(close.CloseStatus);
    }

    public static int ExitCodeFor(CloseStatus status) => (int)status switch
    {
        1000 => 0,
        >= 1001 and <= 1015 and var code => code - 1000,
        _ => 16,
    };

    private static async Task<WebSocketMessage> PrintAsync(WebSocketConnection ws, CliConsole console, bool hex)
    {
        string marker = console.Interactive ? "< " : "";
        while (true)
        {
            var message = await ws.ReceiveAsync();
            if (message.IsClose)
                return message;
            string text = message.Type == MessageType.Text
                ? message.GetText()
                : hex ? Convert.ToHexStringLower(message.Payload.Span) : Convert.ToBase64String(message.Payload.Span);
            await console.Out.WriteLineAsync(marker + text);
            await console.Out.FlushAsync();
        }
    }

    // --execute: the given messages, then a wait for what answers them.
    private static async Task ExecuteAsync(WebSocketConnection ws, IReadOnlyList<string> messages, TimeSpan wait, CancellationToken stop)
    {
        try
        {
            foreach (var message in messages)
                await ws.SendTextAsync(message, stop);
            await Task.Delay(wait, stop);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketClosedException)
        {
        }
    }

    private static async Task SendLinesAsync(WebSocketConnection ws, CliConsole console, bool slash, CancellationToken stop)
    {
        try
        {
            while (await console.In.ReadLineAsync(stop) is { } line)
            {
                if (slash && line.StartsWith('/'))
                {
                    if (!await RunSlashCommandAsync(ws, console, line))
                        return;
                    continue;
                }
                await ws.SendTextAsync(line, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (WebSocketClosedException)
        {
        }
    }

    // False when the command closed the connection.
    private static async Task<bool> RunSlashCommandAsync(WebSocketConnection ws, CliConsole console, string line)
    {
        string[] words = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        switch (words[0])
        {
            case "/ping":
                string text = line.Length > 5 ? line[6..] : "";
                byte[] payload = System.Text.Encoding.UTF8.GetBytes(text);
                if (payload.Length > 125)
                {
                    await console.Error.WriteLineAsync("a ping carries at most 125 bytes");
                    return true;
                }
                ws.PongReceived ??= p => console.Error.WriteLine($"pong {System.Text.Encoding.UTF8.GetString(p.Span)}");
                await ws.PingAsync(payload);
                return true;
            case "/close":
                int code = 1000;
                if (words.Length > 1 && !int.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out code))
                    code = -1;
                try
                {
                    await ws.CloseAsync((CloseStatus)code, words.Length > 2 ? words[2] : null);
                }
                catch (ArgumentOutOfRangeException)
                {
                    await console.Error.WriteLineAsync($"'{words[1]}' is not a close code that may be sent (1000-1003, 1007-1014, 3000-4999)");
                    return true;
                }
                catch (ArgumentException)
                {
                    await console.Error.WriteLineAsync("a close reason is at most 123 bytes");
                    return true;
                }
                return false;
            case "/binary":
                try
                {
                    await ws.SendBinaryAsync(Convert.FromHexString(words.Length > 1 ? string.Concat(words[1..]).Replace(" ", "") : ""));
                }
                catch (FormatException)
                {
                    await console.Error.WriteLineAsync("/binary takes hex digits, like /binary 01ff");
                }
                return true;
            default:
                await console.Error.WriteLineAsync("commands: /ping [text], /close [code [reason]], /binary <hex>");
                return true;
        }
    }

    // An HTTP token (RFC 9110 §5.6.2): what a header name or a subprotocol may be.
    private static bool IsToken(string text) =>
        text.Length > 0 && text.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c));
}

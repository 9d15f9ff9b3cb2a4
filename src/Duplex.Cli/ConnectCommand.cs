using System.Globalization;
using Duplex.Protocol;

namespace Duplex.Cli;

/// <summary>`duplex connect`: each line of input is sent as a text message; messages received are printed.</summary>
internal static class ConnectCommand
{
    public const string Help = """
        usage: duplex connect <ws://host:port/path | wss://… | host:port/path> [options]
               duplex connect -l [HOST:]PORT [options]

        Sends each line of standard input as a text message and prints every message received
        (text as is, binary as hex or base64). At the end of input it closes with 1000, and so
        does Ctrl+C (a second Ctrl+C drops the connection at once). A close from the server ends
        it at once, whatever the input is doing. On a terminal, received lines are marked '< '
        and shown in colour. A URL without a scheme is ws://.

        options:
          -s, --subprotocol NAME       offer a subprotocol (repeatable, in order of preference)
          -H, --header 'Name: value'   send an extra request header (repeatable)
          -o, --origin ORIGIN          send an Origin header
          -x, --execute TEXT           send TEXT once connected (repeatable) instead of reading
                                       standard input, wait (--wait), then close with 1000
          --binary-file PATH           send the file as one binary message once connected
                                       (repeatable; after any --execute), wait, then close
          -1, --one-message            send all of standard input as one text message (without
                                       its final newline), print the first message received
                                       (a server's greeting counts: the hub's welcome, say),
                                       close with 1000; exit 124 if none comes (--wait)
          -w, --wait SECONDS           with -x, --binary-file or -1: how long to wait for
                                       answers (default 2; 10 with -1)
          -P, --show-ping-pong         print the pings and pongs received
          -n, --insecure               accept any TLS certificate (for self-signed test servers)
          --ca FILE                    also trust the certificate authorities in this PEM file
          --cert FILE [--key FILE]     present a client certificate (PEM with its key, or PFX)
          --proxy URL                  tunnel through this HTTP proxy (http://[user:pass@]host:port);
                                       without it, HTTP_PROXY / HTTPS_PROXY / NO_PROXY apply
          --no-proxy                   connect directly, whatever the environment says
          --reconnect                  when the connection is lost (not closed with 1000),
                                       connect again with backoff; input waits meanwhile
          -l, --listen [HOST:]PORT     be the server instead (like wscat -l): accept WebSocket
                                       connections at / (HOST defaults to 127.0.0.1), print
                                       what they send, send each input line to all of them
          --no-color                   no colour, even on a terminal (so does NO_COLOR=1)
          --ping-interval SECONDS  send a ping after this much silence (default 30; 0 turns it off)
          --compress               offer permessage-deflate (compression) to the server
          --binary-format FORMAT   how binary messages are printed: hex (default) or base64
          --max-message-size N     largest message accepted, like 16m (default 16m)
          --connect-timeout SECONDS  time allowed for the connection and handshake (default 30)
          --slash                  treat lines starting with '/' as commands:
                                   /ping [text]  /close [code [reason]]  /binary <hex>  /file PATH

        exit status: 0 after a 1000 close; code-1000 for close codes 1001-1015 (so 1006,
        a connection lost without a close frame, gives 6); 16 for codes 3000-4999;
        64 for a bad command line; 69 when the connection could not be made; 124 when
        --one-message got no answer in time.
        """;

    public const int ExitNoAnswer = 124; // as timeout(1): --one-message got no answer in time

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken stop)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await console.Out.WriteLineAsync(Help);
            return 0;
        }
        var a = Arguments.Parse(args,
            ["subprotocol", "header", "origin", "ping-interval", "binary-format", "max-message-size", "connect-timeout", "execute", "wait",
             "binary-file", "ca", "cert", "key", "listen", "proxy"],
            ["insecure", "slash", "compress", "show-ping-pong", "one-message", "no-color", "reconnect", "no-proxy"],
            new Dictionary<string, string>
            {
                ["-s"] = "subprotocol", ["-H"] = "header", ["-o"] = "origin", ["-x"] = "execute", ["-w"] = "wait",
                ["-P"] = "show-ping-pong", ["-n"] = "insecure", ["-1"] = "one-message", ["-l"] = "listen",
            });
        var output = new ConnectOutput(console, a.Flag("no-color"), a.Value("binary-format") ?? "hex");
        if (a.Value("listen") is { } listen)
        {
            if (a.Positional.Count > 0)
                throw new UsageException($"--listen takes no URL ('{a.Positional[0]}')");
            return await ListenAsync(listen, a, output, stop);
        }
        if (a.Positional.Count == 0)
            throw new UsageException("connect needs a URL, like ws://127.0.0.1:8080/echo");
        if (a.Positional.Count > 1)
            throw new UsageException($"unexpected argument '{a.Positional[1]}'");
        string target = a.Positional[0].Contains("://", StringComparison.Ordinal) ? a.Positional[0] : "ws://" + a.Positional[0];
        if (!Uri.TryCreate(target, UriKind.Absolute, out var uri) || uri.Scheme is not ("ws" or "wss"))
            throw new UsageException($"'{a.Positional[0]}' is not a ws:// or wss:// URL");
        var execute = a.All("execute");
        var files = a.All("binary-file").Select(ReadFile).ToList();
        bool oneMessage = a.Flag("one-message");
        if (oneMessage && (execute.Count > 0 || files.Count > 0))
            throw new UsageException("--one-message sends standard input: it does not go with --execute or --binary-file");
        if (a.Value("wait") is not null && execute.Count == 0 && files.Count == 0 && !oneMessage)
            throw new UsageException("--wait goes with --execute, --binary-file or --one-message");
        if (a.Flag("reconnect") && (oneMessage || execute.Count > 0 || files.Count > 0))
            throw new UsageException("--reconnect goes with reading standard input, not with -x, --binary-file or -1");
        var wait = TimeSpan.FromSeconds(a.Seconds("wait", oneMessage ? 10 : 2, 0, 86_400));
        var options = ClientOptions(a);

        if (!a.Flag("reconnect"))
        {
            await using var ws = await ConnectAsync(uri, options, a, output, stop);
            Func<WebSocketConnection, Task<int?>> send = oneMessage
                ? w => SendOneMessageAsync(w, console, wait, output, stop)
                : execute.Count > 0 || files.Count > 0
                    ? async w => { await ExecuteAsync(w, execute, files, wait, stop); return null; }
                    : async w => { await SendLinesAsync(() => Task.FromResult<WebSocketConnection?>(w), console, output, a.Flag("slash"), stop); return null; };
            return await TalkAsync(ws, send, output, stop);
        }
        return await TalkWithReconnectsAsync(uri, options, a, output, stop);
    }

    private static WebSocketClientOptions ClientOptions(Arguments a)
    {
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
        if (a.Value("ca") is { } ca)
        {
            if (a.Flag("insecure"))
                throw new UsageException("--ca and --insecure contradict each other");
            options.TrustedAuthorities = ClientTls.LoadAuthorities(ca);
        }
        if (a.Value("proxy") is { } proxy)
        {
            if (a.Flag("no-proxy"))
                throw new UsageException("--proxy and --no-proxy contradict each other");
            if (!Uri.TryCreate(proxy.Contains("://", StringComparison.Ordinal) ? proxy : "http://" + proxy, UriKind.Absolute, out var proxyUri)
                || proxyUri.Scheme != "http")
                throw new UsageException($"--proxy takes an http:// proxy URL like http://proxy:3128, not '{proxy}'");
            options.Proxy = new System.Net.WebProxy(proxyUri);
        }
        options.UseProxy = !a.Flag("no-proxy");
        if (a.Value("key") is not null && a.Value("cert") is null)
            throw new UsageException("--key needs --cert");
        if (a.Value("cert") is { } cert)
            options.ClientCertificates = [ClientTls.LoadClientCertificate(cert, a.Value("key"))];
        return options;
    }

    private static async Task<WebSocketConnection> ConnectAsync(Uri uri, WebSocketClientOptions options, Arguments a, ConnectOutput output, CancellationToken stop)
    {
        var ws = await WebSocketClient.ConnectAsync(uri, options, stop);
        await output.NoteAsync($"connected to {uri}{(ws.SubProtocol is null ? "" : $" (subprotocol {ws.SubProtocol})")}{(ws.Compression is null ? "" : " (permessage-deflate)")}");
        if (a.Flag("show-ping-pong"))
        {
            ws.PingReceived = p => output.Note($"ping {System.Text.Encoding.UTF8.GetString(p.Span)}");
            ws.PongReceived = p => output.Note($"pong {System.Text.Encoding.UTF8.GetString(p.Span)}");
        }
        return ws;
    }

    // One connection: print what comes, run the sender, close with 1000 when the sender is done
    // or on Ctrl+C; the exit status follows the close (or the sender's own verdict).
    private static async Task<int> TalkAsync(WebSocketConnection ws, Func<WebSocketConnection, Task<int?>> send, ConnectOutput output, CancellationToken stop)
    {
        var printer = PrintAsync(ws, output);
        // Reading a terminal blocks a thread (Console.In has no truly asynchronous read): input is
        // read on a thread of its own, so that a close from the server or a Ctrl+C is acted on at
        // once, not after the next line is typed.
        var sender = Task.Factory.StartNew(() => send(ws), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        var interrupted = new TaskCompletionSource();
        using (stop.Register(() => interrupted.TrySetResult()))
            await Task.WhenAny(printer, sender, interrupted.Task);
        if (!printer.IsCompleted)
            await CloseQuietlyAsync(ws);
        var close = await printer;
        await output.ClosedAsync(close);
        int? verdict = sender.IsCompletedSuccessfully ? sender.Result : null;
        return verdict ?? ExitCodeFor(close.CloseStatus);
    }

    private static async Task CloseQuietlyAsync(WebSocketConnection ws)
    {
        try
        {
            await ws.CloseAsync(CloseStatus.NormalClosure);
        }
        catch (WebSocketClosedException)
        {
        }
    }

    // --reconnect: input lines go to whichever connection is up; a connection lost (any close but
    // 1000, or none) is made again after a backoff of 0.5 s doubling to 30 s; input waits meanwhile.
    private static async Task<int> TalkWithReconnectsAsync(Uri uri, WebSocketClientOptions options, Arguments a, ConnectOutput output, CancellationToken stop)
    {
        var current = new TaskCompletionSource<WebSocketConnection?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var inputDone = new TaskCompletionSource();
        var sender = Task.Factory.StartNew(async () =>
        {
            await SendLinesAsync(() => current.Task, output.Console, output, a.Flag("slash"), stop, retry: true);
            inputDone.TrySetResult();
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        var backoff = TimeSpan.FromSeconds(0.5);
        bool connectedOnce = false; // a first connection that fails is an error (a wrong URL), not something to wait out
        while (true)
        {
            WebSocketConnection ws;
            try
            {
                ws = await ConnectAsync(uri, options, a, output, stop);
                backoff = TimeSpan.FromSeconds(0.5);
                connectedOnce = true;
            }
            catch (Exception e) when (connectedOnce && !stop.IsCancellationRequested
                && e is IOException or System.Net.Sockets.SocketException or WebSocketHandshakeException or TimeoutException)
            {
                await output.NoteAsync($"cannot connect: {DuplexCli.Describe(e)}; trying again in {backoff.TotalSeconds:0.#} s");
                if (!await Waits.PauseAsync(backoff, stop))
                    return 130;
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                continue;
            }
            await using (ws)
            {
                current.TrySetResult(ws);
                var printer = PrintAsync(ws, output);
                var interrupted = new TaskCompletionSource();
                using (stop.Register(() => interrupted.TrySetResult()))
                    await Task.WhenAny(printer, inputDone.Task, interrupted.Task);
                bool ours = !printer.IsCompleted;
                if (ours)
                    await CloseQuietlyAsync(ws);
                var close = await printer;
                current = new TaskCompletionSource<WebSocketConnection?>(TaskCreationOptions.RunContinuationsAsynchronously);
                await output.ClosedAsync(close);
                if (ours || close.CloseStatus == CloseStatus.NormalClosure || stop.IsCancellationRequested)
                {
                    current.TrySetResult(null); // the input reader ends
                    return ExitCodeFor(close.CloseStatus);
                }
            }
            await output.NoteAsync($"reconnecting in {backoff.TotalSeconds:0.#} s");
            if (!await Waits.PauseAsync(backoff, stop))
            {
                current.TrySetResult(null);
                return 130;
            }
        }
    }


    public static int ExitCodeFor(CloseStatus status) => (int)status switch
    {
        1000 => 0,
        >= 1001 and <= 1015 and var code => code - 1000,
        _ => 16,
    };

    // Prints every message until the close, which it returns.
    private static async Task<WebSocketMessage> PrintAsync(WebSocketConnection ws, ConnectOutput output)
    {
        while (true)
        {
            var message = await ws.ReceiveAsync();
            if (message.IsClose)
                return message;
            await output.ReceivedAsync(message);
        }
    }

    private static byte[] ReadFile(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new UsageException($"--binary-file: cannot read '{path}': {e.Message}");
        }
    }

    // --execute and --binary-file: the given messages, then a wait for what answers them.
    private static async Task ExecuteAsync(WebSocketConnection ws, IReadOnlyList<string> texts, IReadOnlyList<byte[]> files, TimeSpan wait, CancellationToken stop)
    {
        try
        {
            foreach (var text in texts)
                await ws.SendTextAsync(text, stop);
            foreach (var file in files)
                await ws.SendBinaryAsync(file, stop);
            await Task.Delay(wait, stop);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketClosedException)
        {
        }
    }

    // --one-message: all of standard input as one text message; the first answer is printed
    // (by the printer, which this replaces for that one message), then the connection closes.
    private static async Task<int?> SendOneMessageAsync(WebSocketConnection ws, CliConsole console, TimeSpan wait, ConnectOutput output, CancellationToken stop)
    {
        string text = await console.In.ReadToEndAsync(stop);
        if (text.EndsWith('\n'))
            text = text[..^(text.EndsWith("\r\n", StringComparison.Ordinal) ? 2 : 1)];
        var answered = output.ExpectAnswer();
        try
        {
            await ws.SendTextAsync(text, stop);
            await answered.WaitAsync(wait, stop);
            return null;
        }
        catch (TimeoutException)
        {
            await output.NoteAsync($"no answer within {wait.TotalSeconds:0.#} s");
            return ExitNoAnswer;
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketClosedException)
        {
            return null;
        }
    }

    // Lines of input to the connection `connection()` gives (it waits while there is none, and
    // gives null when there will be no more). With `retry` (--reconnect) a line that could not be
    // sent because the connection was lost goes to the next connection.
    private static async Task SendLinesAsync(Func<Task<WebSocketConnection?>> connection, CliConsole console, ConnectOutput output, bool slash,
        CancellationToken stop, bool retry = false)
    {
        try
        {
            while (await console.In.ReadLineAsync(stop) is { } line)
            {
                while (true)
                {
                    if (await connection().WaitAsync(stop) is not { } ws)
                        return;
                    try
                    {
                        if (slash && line.StartsWith('/'))
                        {
                            if (!await RunSlashCommandAsync(ws, output, line))
                                return;
                        }
                        else
                        {
                            await ws.SendTextAsync(line, stop);
                        }
                        break;
                    }
                    catch (WebSocketClosedException)
                    {
                        if (!retry)
                            return;
                        await Task.Delay(100, stop); // the lost connection is being replaced
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    // -l: a server for trying clients out, as wscat -l. Connections are accepted at /, what they
    // send is printed, each input line goes to every connection; Ctrl+C closes them with 1001.
    private static async Task<int> ListenAsync(string listen, Arguments a, ConnectOutput output, CancellationToken stop)
    {
        string host = "127.0.0.1", portText = listen;
        int colon = listen.LastIndexOf(':');
        if (colon >= 0)
        {
            host = listen[..colon].Trim('[', ']');
            portText = listen[(colon + 1)..];
        }
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
            throw new UsageException($"--listen must be [HOST:]PORT, not '{listen}'");
        var address = ServeCommand.Host(host, "--listen");
        var serverOptions = new Server.WebSocketServerOptions
        {
            MaxMessageSize = a.Bytes("max-message-size", 16L << 20, 1, 1L << 31),
            Compression = a.Flag("compress") ? PerMessageDeflateOptions.ForServer() : null,
            KeepAliveInterval = TimeSpan.FromSeconds(a.Seconds("ping-interval", 30, 0, 86400)) is { TotalSeconds: > 0 } every ? every : TimeSpan.Zero,
        };
        serverOptions.AllowedOrigins.Add("*"); // a tool for trying things out: pages from anywhere may connect
        var route = new Server.WebSocketRouteOptions();
        foreach (var protocol in a.All("subprotocol"))
            route.SubProtocols.Add(protocol);
        var clients = new System.Collections.Concurrent.ConcurrentDictionary<int, WebSocketConnection>();
        int next = 0;
        await using var server = new Server.WebSocketServer(serverOptions);
        server.Map("/", async (ws, request, stopping) =>
        {
            int id = Interlocked.Increment(ref next);
            clients[id] = ws;
            await output.NoteAsync($"client {id} connected from {request.RemoteEndPoint}{(ws.SubProtocol is null ? "" : $" (subprotocol {ws.SubProtocol})")}");
            try
            {
                var close = await PrintAsync(ws, output);
                await output.NoteAsync($"client {id} closed: {(int)close.CloseStatus}{(string.IsNullOrEmpty(close.CloseReason) ? "" : " " + close.CloseReason)}");
            }
            finally
            {
                clients.TryRemove(id, out _);
            }
        }, route);
        try
        {
            await server.StartAsync(new System.Net.IPEndPoint(address, port));
        }
        catch (System.Net.Sockets.SocketException e)
        {
            await output.NoteAsync($"duplex: cannot listen on {host}:{port}: {e.Message}");
            return DuplexCli.ExitUnavailable;
        }
        await output.NoteAsync($"listening on ws://{ServeCommand.Format(server.LocalEndPoint!)}/ (Ctrl+C to stop)");
        _ = Task.Factory.StartNew(async () =>
        {
            try
            {
                while (await output.Console.In.ReadLineAsync(stop) is { } line)
                {
                    if (clients.IsEmpty)
                        await output.NoteAsync("no client is connected: the line was not sent");
                    foreach (var ws in clients.Values)
                    {
                        try
                        {
                            await ws.SendTextAsync(line, stop);
                        }
                        catch (WebSocketClosedException)
                        {
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        try
        {
            await Task.Delay(Timeout.Infinite, stop);
        }
        catch (OperationCanceledException)
        {
        }
        await output.NoteAsync("stopping: closing connections with 1001");
        await server.StopAsync();
        return 0;
    }

    // False when the command closed the connection.
    private static async Task<bool> RunSlashCommandAsync(WebSocketConnection ws, ConnectOutput output, string line)
    {
        string[] words = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        switch (words[0])
        {
            case "/ping":
                string text = line.Length > 5 ? line[6..] : "";
                byte[] payload = System.Text.Encoding.UTF8.GetBytes(text);
                if (payload.Length > 125)
                {
                    await output.NoteAsync("a ping carries at most 125 bytes");
                    return true;
                }
                ws.PongReceived ??= p => output.Note($"pong {System.Text.Encoding.UTF8.GetString(p.Span)}");
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
                    await output.NoteAsync($"'{words[1]}' is not a close code that may be sent (1000-1003, 1007-1014, 3000-4999)");
                    return true;
                }
                catch (ArgumentException)
                {
                    await output.NoteAsync("a close reason is at most 123 bytes");
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
                    await output.NoteAsync("/binary takes hex digits, like /binary 01ff");
                }
                return true;
            case "/file":
                string path = line.Length > 6 ? line[6..].Trim() : "";
                byte[] contents;
                try
                {
                    contents = await File.ReadAllBytesAsync(path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
                {
                    await output.NoteAsync($"/file: cannot read '{path}': {e.Message}");
                    return true;
                }
                await ws.SendBinaryAsync(contents);
                await output.NoteAsync($"sent {path}: {contents.Length:N0} bytes, one binary message");
                return true;
            default:
                await output.NoteAsync("commands: /ping [text], /close [code [reason]], /binary <hex>, /file PATH");
                return true;
        }
    }

    // An HTTP token (RFC 9110 §5.6.2): what a header name or a subprotocol may be.
    private static bool IsToken(string text) =>
        text.Length > 0 && text.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c));
}

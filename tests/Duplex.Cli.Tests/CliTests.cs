using System.Diagnostics;
using Duplex.Protocol;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Cli.Tests;

public class ArgumentErrorTests
{
    [Theory]
    [InlineData(new string[0], "no command given")]
    [InlineData(new[] { "frobnicate" }, "unknown command 'frobnicate'")]
    [InlineData(new[] { "serve", "--port", "abc" }, "--port must be a whole number from 0 to 65535, not 'abc'")]
    [InlineData(new[] { "serve", "--port", "70000" }, "--port must be a whole number from 0 to 65535, not '70000'")]
    [InlineData(new[] { "serve", "--host", "nowhere.invalid" }, "--host 'nowhere.invalid' is not an IP address and does not resolve")]
    [InlineData(new[] { "serve", "--tls-cert", "/etc/hostname" }, "--tls-cert /etc/hostname holds no private key: give its PEM key file with --tls-key")]
    [InlineData(new[] { "serve", "--bogus" }, "unknown option '--bogus'")]
    [InlineData(new[] { "serve", "--port" }, "option '--port' needs a value")]
    [InlineData(new[] { "serve", "--tls-key", "k.pem" }, "--tls-key needs --tls-cert")]
    [InlineData(new[] { "serve", "--max-message-size", "lots" }, "--max-message-size must be a size")]
    [InlineData(new[] { "serve", "--send-timeout", "soon" }, "--send-timeout must be")]
    [InlineData(new[] { "serve", "--max-history", "lots" }, "--max-history must be a size")]
    [InlineData(new[] { "serve", "--max-pending-per-address", "0" }, "--max-pending-per-address must be a whole number")]
    [InlineData(new[] { "serve", "--redis", "localhost:notaport" }, "--redis must be HOST:PORT, not 'localhost:notaport'")]
    [InlineData(new[] { "serve", "--redis", "h:6379,bogus=1" }, "--redis: Keyword 'bogus' is not supported")]
    [InlineData(new[] { "serve", "--node-id", "n1" }, "--redis-password and --node-id need --redis")]
    [InlineData(new[] { "connect" }, "connect needs a URL")]
    [InlineData(new[] { "connect", "ws://h/", "-w", "1" }, "--wait goes with --execute")]
    [InlineData(new[] { "connect", "ws://h/", "-Z" }, "unknown option '-Z'")]
    [InlineData(new[] { "connect", "http://example.com" }, "'http://example.com' is not a ws:// or wss:// URL")]
    [InlineData(new[] { "connect", "ws://h/", "--header", "nocolon" }, "--header must look like 'Name: value'")]
    [InlineData(new[] { "connect", "ws://h/", "--binary-format", "octal" }, "--binary-format must be hex or base64")]
    [InlineData(new[] { "connect", "ws://h/", "--ping-interval", "-1" }, "--ping-interval must be a number of seconds")]
    [InlineData(new[] { "connect", "ws://h/", "--subprotocol", "a b" }, "'a b' is not a valid subprotocol name")]
    [InlineData(new[] { "connect", "ws://h/", "-1", "-x", "a" }, "--one-message sends standard input")]
    [InlineData(new[] { "connect", "ws://h/", "--key", "k.pem" }, "--key needs --cert")]
    [InlineData(new[] { "connect", "ws://h/", "--ca", "/nonexistent/ca.pem" }, "--ca: cannot read '/nonexistent/ca.pem'")]
    [InlineData(new[] { "connect", "ws://h/", "--reconnect", "-x", "a" }, "--reconnect goes with reading standard input")]
    [InlineData(new[] { "connect", "-l", "nonsense" }, "--listen must be [HOST:]PORT, not 'nonsense'")]
    [InlineData(new[] { "connect", "-l", "8080", "ws://h/" }, "--listen takes no URL")]
    public async Task Bad_arguments_give_one_line_and_exit_64(string[] args, string message)
    {
        var (code, run) = await CliRun.RunAsync("", args);
        Assert.Equal(64, code);
        var lines = run.Error.TrimEnd().Split('\n');
        Assert.Single(lines); // the error, and where to find the usage, on one line
        Assert.StartsWith("duplex: " + message, lines[0]);
        Assert.Contains("--help' lists", lines[0]);
        Assert.DoesNotContain("   at ", run.Error);
    }

    [Fact]
    public async Task Missing_certificate_file_is_a_clear_error()
    {
        var (code, run) = await CliRun.RunAsync("", "serve", "--port", "0", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem");
        Assert.Equal(64, code);
        Assert.StartsWith("duplex: cannot load the TLS certificate", run.Error);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("serve", "--help")]
    [InlineData("connect", "--help")]
    public async Task Help_is_printed_with_exit_0(params string[] args)
    {
        var (code, run) = await CliRun.RunAsync("", args);
        Assert.Equal(0, code);
        Assert.Contains("usage: duplex", run.Out);
    }

    [Fact]
    public async Task Connection_refused_is_one_line_with_exit_69()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var (code, run) = await CliRun.RunAsync("", "connect", $"ws://127.0.0.1:{port}/echo");
        Assert.Equal(69, code);
        Assert.Single(run.Error.TrimEnd().Split('\n'));
        Assert.StartsWith("duplex: ", run.Error);
    }

    [Fact]
    public async Task Refused_handshake_is_one_line_with_exit_69()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var (code, run) = await CliRun.RunAsync("", "connect", server.Url("/missing").ToString());
        Assert.Equal(69, code);
        Assert.Contains("404", run.Error);
    }
}

public class ServeAndConnectTests
{
    [Fact]
    public async Task Serve_echoes_what_connect_sends_and_stops_on_cancel()
    {
        using var stop = new CancellationTokenSource();
        var serve = new CliRun();
        var serving = serve.RunAsync(stop.Token, "serve", "--port", "0");
        string url = await serve.WaitForServingAsync();
        Assert.EndsWith("/echo", url);

        var (code, client) = await CliRun.RunAsync("hello\nwörld\n", "connect", url);
        Assert.Equal(0, code);
        Assert.Equal("hello\nwörld\n", client.Out.Replace("\r\n", "\n"));
        Assert.Contains("closed: 1000", client.Error);

        stop.Cancel();
        Assert.Equal(0, await serving.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("open 127.0.0.1", serve.Error);
        Assert.Contains("stopped", serve.Error);
    }

    [Fact]
    public async Task Serve_over_tls_with_pem_files_and_connect_insecure()
    {
        string directory = Directory.CreateTempSubdirectory("duplex-cli-").FullName;
        try
        {
            var (certificate, key) = TestCertificates.WritePem(TestCertificates.Localhost, directory);
            using var stop = new CancellationTokenSource();
            var serve = new CliRun();
            var serving = serve.RunAsync(stop.Token, "serve", "--port", "0", "--tls-cert", certificate, "--tls-key", key, "--quiet");
            string url = await serve.WaitForServingAsync();
            Assert.StartsWith("wss://", url);

            var (refused, _) = await CliRun.RunAsync("x\n", "connect", url);
            Assert.Equal(69, refused); // self-signed: refused unless --insecure
            var (code, client) = await CliRun.RunAsync("secret\n", "connect", url, "--insecure");
            Assert.Equal(0, code);
            Assert.Equal("secret\n", client.Out.Replace("\r\n", "\n"));
            stop.Cancel();
            Assert.Equal(0, await serving.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }

    [Fact]
    public async Task Serve_answers_the_browser_page_and_health_check()
    {
        using var stop = new CancellationTokenSource();
        var serve = new CliRun();
        var serving = serve.RunAsync(stop.Token, "serve", "--port", "0");
        string url = await serve.WaitForServingAsync();
        using var http = new HttpClient();
        string root = url.Replace("ws://", "http://").Replace("/echo", "/");
        Assert.Contains("import { DuplexHub } from \"/duplex-hub.js\"", await http.GetStringAsync(root));
        Assert.Contains("new WebSocket(", await http.GetStringAsync(root + "duplex-hub.js"));
        Assert.Equal("ok\n", await http.GetStringAsync(root + "healthz"));
        stop.Cancel();
        await serving;
    }

    [Fact]
    public async Task Port_in_use_is_a_clear_error()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var (code, run) = await CliRun.RunAsync("", "serve", "--port", server.LocalEndPoint!.Port.ToString());
        Assert.Equal(69, code);
        Assert.StartsWith($"duplex: cannot listen on 127.0.0.1:{server.LocalEndPoint.Port}", run.Error);
    }

    private static async Task<WebSocketServer> StartScriptedServerAsync()
    {
        return await Loopback.StartEchoServerAsync(new WebSocketServerOptions { AllowedOrigins = { "http://example.test" } }, configure: s =>
        {
            s.Map("/binary", async (ws, _, _) =>
            {
                await ws.SendBinaryAsync(new byte[] { 0x01, 0xff, 0x10 });
                await ws.CloseAsync(CloseStatus.NormalClosure);
            });
            s.Map("/close1011", (ws, _, _) => ws.CloseAsync(CloseStatus.InternalServerError, "oops"));
            s.Map("/close4001", (ws, _, _) => ws.CloseAsync((CloseStatus)4001, "app"));
            // What the handshake carried, then a ping, then an echo of everything.
            s.Map("/request", async (ws, request, _) =>
            {
                await ws.SendTextAsync($"x-test={request.Headers["X-Test"]} origin={request.Origin} subprotocol={ws.SubProtocol}");
                await ws.PingAsync("srv"u8.ToArray());
                await Echo.Handler(ws, request, default);
            }, new WebSocketRouteOptions { SubProtocols = { "chat" } });
        });
    }

    [Fact]
    public async Task Short_flags_execute_and_wait_as_in_wscat_and_a_url_without_scheme()
    {
        await using var server = await StartScriptedServerAsync();
        string schemeless = server.Url("/request").ToString()["ws://".Length..];
        var (code, run) = await CliRun.RunAsync("", "connect", schemeless, "-H", "X-Test: yes", "-o", "http://example.test",
            "-s", "chat", "-x", "hello", "-x", "again", "-w", "0.5", "-P");
        Assert.True(code == 0, run.Error);
        Assert.Equal("x-test=yes origin=http://example.test subprotocol=chat\nhello\nagain\n", run.Out.Replace("\r\n", "\n"));
        Assert.Contains("ping srv", run.Error);   // -P shows the server's ping
        Assert.Contains("closed: 1000", run.Error);
    }

    [Theory]
    [InlineData("hex", "01ff10")]
    [InlineData("base64", "Af8Q")]
    public async Task Binary_messages_are_printed_as_hex_or_base64(string format, string expected)
    {
        await using var server = await StartScriptedServerAsync();
        var (code, run) = await CliRun.RunAsync("", "connect", server.Url("/binary").ToString(), "--binary-format", format);
        Assert.Equal(0, code);
        Assert.Equal(expected, run.Out.Trim());
    }

    [Theory]
    [InlineData("/close1011", 11, "closed: 1011 oops")]
    [InlineData("/close4001", 16, "closed: 4001 app")]
    public async Task Exit_status_follows_the_close_code(string path, int exit, string line)
    {
        await using var server = await StartScriptedServerAsync();
        var run = new CliRun(); // input never ends: the server's close ends the command
        var never = new BlockingReader();
        var console = new CliConsole(never, run.Console.Out, run.Console.Error, false);
        int code = await DuplexCli.RunAsync(["connect", server.Url(path).ToString()], console, default).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(exit, code);
        Assert.Contains(line, run.Error);
    }

    [Fact]
    public async Task Slash_commands_ping_send_binary_and_close_with_a_code()
    {
        await using var server = await StartScriptedServerAsync();
        var (code, run) = await CliRun.RunAsync("/ping hi\n/binary 00ff\nplain\n/close 4000 done\n", "connect", server.Url().ToString(), "--slash");
        Assert.Equal(16, code);
        Assert.Equal("00ff\nplain\n", run.Out.Replace("\r\n", "\n"));
        Assert.Contains("closed: 4000", run.Error);
    }

    [Fact]
    public async Task A_server_close_ends_the_command_at_once_even_while_a_terminal_read_blocks()
    {
        // Console.In reads synchronously: its ReadLineAsync blocks the caller until a line comes.
        // The report: the server's close was shown only after the user typed another line.
        await using var server = await StartScriptedServerAsync();
        var run = new CliRun();
        using var terminal = new TerminalReader();
        var console = new CliConsole(terminal, run.Console.Out, run.Console.Error, false);
        int code = await DuplexCli.RunAsync(["connect", server.Url("/close1011").ToString()], console, default).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(11, code);
        Assert.Contains("closed: 1011 oops", run.Error);
    }

    [Fact]
    public async Task Ctrl_c_closes_with_1000_while_a_terminal_read_blocks()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var run = new CliRun();
        using var terminal = new TerminalReader();
        var console = new CliConsole(terminal, run.Console.Out, run.Console.Error, false);
        using var ctrlC = new CancellationTokenSource();
        var command = DuplexCli.RunAsync(["connect", server.Url().ToString()], console, ctrlC.Token);
        for (int i = 0; i < 200 && !run.Error.Contains("connected to"); i++)
            await Task.Delay(25);
        ctrlC.Cancel(); // what the first Ctrl+C does
        Assert.Equal(0, await command.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("closed: 1000", run.Error);
    }

    // Like Console.In on a terminal: ReadLineAsync blocks the calling thread (until disposed).
    private sealed class TerminalReader : TextReader
    {
        private readonly ManualResetEventSlim _released = new();

        public override string? ReadLine()
        {
            _released.Wait();
            return null;
        }

        public override ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken) => new(ReadLine());

        protected override void Dispose(bool disposing)
        {
            _released.Set();
            base.Dispose(disposing);
        }
    }

    private sealed class BlockingReader : TextReader
    {
        public override async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return null;
        }
    }
}

/// <summary>The real executable, as a user runs it.</summary>
public class ProcessTests
{
    private static ProcessStartInfo Duplex(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Duplex.Cli.dll"));
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        return info;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task On_a_terminal_connect_marks_and_colours_what_it_receives_unless_NO_COLOR(bool noColor)
    {
        // A real pseudo-terminal (util-linux `script`), so the program's own terminal detection is tested.
        await using var server = await Loopback.StartEchoServerAsync();
        var info = new ProcessStartInfo("script") { RedirectStandardOutput = true, RedirectStandardInput = true, RedirectStandardError = true };
        string dll = Path.Combine(AppContext.BaseDirectory, "Duplex.Cli.dll");
        foreach (var arg in new[] { "-qec", $"dotnet {dll} connect {server.Url()} -x hi -w 0.3", "/dev/null" })
            info.ArgumentList.Add(arg);
        info.Environment["TERM"] = "xterm";
        if (noColor)
            info.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        string output = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, process.ExitCode);
        Assert.Contains(noColor ? "< hi" : "\u001b[32m< \u001b[0mhi", output);
        Assert.Equal(!noColor, output.Contains("\u001b[36mclosed: 1000", StringComparison.Ordinal));
    }

    // The environment's proxy, as curl and HttpClient take it: HTTP_PROXY for ws://, NO_PROXY to skip it; --no-proxy ignores both.
    [Theory]
    [InlineData(new string[0], "", true)]
    [InlineData(new string[0], "127.0.0.1", false)]
    [InlineData(new[] { "--no-proxy" }, "", false)]
    public async Task Connect_goes_through_the_proxy_the_environment_names(string[] flags, string noProxy, bool proxied)
    {
        await using var proxy = new ConnectProxy();
        await using var server = await Loopback.StartEchoServerAsync();
        var info = Duplex(["connect", server.Url().ToString(), "-x", "through", "-w", "0.5", .. flags]);
        info.Environment["HTTP_PROXY"] = proxy.Uri.ToString();
        info.Environment["NO_PROXY"] = noProxy;
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        string output = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, process.ExitCode);
        Assert.Contains("through", output, StringComparison.Ordinal);
        Assert.Equal(proxied ? 1 : 0, proxy.Requests.Count);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("warn", false)]
    public async Task Serve_logs_with_timestamps_and_levels_and_metrics_count_what_the_meter_saw(string? level, bool infoShown)
    {
        using var process = Process.Start(level is null ? Duplex("serve", "--port", "0") : Duplex("serve", "--port", "0", "--log-level", level))!;
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        string url = "";
        while (url == "" && await process.StandardError.ReadLineAsync() is { } line)
            if (line.IndexOf("serving ", StringComparison.Ordinal) is int at and >= 0)
                url = line[(at + 8)..].Split(' ')[0];
        var reading = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
                lines.Enqueue(line);
        });
        try
        {
            await using (var ws = await WebSocketClient.ConnectAsync(new Uri(url)))
            {
                await ws.SendTextAsync("count me");
                await ws.ReceiveAsync();
                await ws.CloseAsync(CloseStatus.NormalClosure);
            }
            using var http = new HttpClient();
            string metrics = await http.GetStringAsync(new Uri(new Uri(url.Replace("ws://", "http://", StringComparison.Ordinal)), "/metrics"));
            Assert.Contains("duplex_messages_received_total 1\n", metrics, StringComparison.Ordinal);
            Assert.Contains("duplex_messages_sent_total 1\n", metrics, StringComparison.Ordinal);
            Assert.Contains("duplex_connections_closed_total{duplex_role=\"server\",duplex_close_code=\"1000\"} 1\n", metrics, StringComparison.Ordinal);
            await Task.Delay(300);
            bool sawOpen = lines.Any(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: open 127\.0\.0\.1:\d+ /echo$"));
            Assert.True(sawOpen == infoShown, string.Join('\n', lines));
        }
        finally
        {
            process.Kill();
        }
    }

    [Fact]
    public async Task Bad_arguments_print_no_stack_trace()
    {
        using var process = Process.Start(Duplex("serve", "--port", "x"))!;
        string error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(64, process.ExitCode);
        Assert.StartsWith("duplex: --port must be", error);
        Assert.DoesNotContain(" at ", error);
    }

    [Fact]
    public async Task Serve_listens_on_a_host_name_and_logs_a_close_without_reason_in_single_spaces()
    {
        using var process = Process.Start(Duplex("serve", "--host", "localhost", "--port", "0"))!;
        try
        {
            string url = "";
            while (url == "" && await process.StandardError.ReadLineAsync() is { } line)
                if (line.IndexOf("serving ", StringComparison.Ordinal) is int at and >= 0)
                    url = line[(at + 8)..].Split(' ')[0];
            Assert.StartsWith("ws://127.0.0.1:", url);
            await using (var ws = await WebSocketClient.ConnectAsync(new Uri(url)))
                await ws.CloseAsync(CloseStatus.NormalClosure);
            string? closeLine = null;
            while (closeLine is null && await process.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)) is { } line)
                if (line.Contains(" close ", StringComparison.Ordinal))
                    closeLine = line;
            Assert.Contains(" /echo 1000 after ", closeLine);
        }
        finally
        {
            process.Kill();
        }
    }

    [Fact]
    public async Task Sigterm_stops_serve_gracefully_closing_clients_with_1001()
    {
        using var process = Process.Start(Duplex("serve", "--port", "0"))!;
        string url = "";
        while (await process.StandardError.ReadLineAsync() is { } line)
        {
            int at = line.IndexOf("serving ", StringComparison.Ordinal);
            if (at >= 0)
            {
                url = line[(at + 8)..].Split(' ')[0];
                break;
            }
        }
        Assert.StartsWith("ws://", url);
        await using var ws = await WebSocketClient.ConnectAsync(new Uri(url));
        var receive = ws.ReceiveAsync().AsTask();
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString()]))
            await kill.WaitForExitAsync();
        var closed = await receive.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(CloseStatus.GoingAway, closed.CloseStatus);
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, process.ExitCode);
    }
}

/// <summary>`duplex bench` against a Duplex server in this process.</summary>
public class BenchTests
{
    private static System.Text.Json.JsonElement Json(string output) =>
        System.Text.Json.JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;

    [Fact]
    public async Task Echo_mode_reports_rate_latency_and_no_errors()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var (code, run) = await CliRun.RunAsync("", "bench", "echo", server.Url().ToString(),
            "--connections", "4", "--in-flight", "4", "--duration", "1", "--warmup", "0.5", "--json", "--quiet");
        Assert.Equal(0, code);
        var result = Json(run.Out);
        Assert.True(result.GetProperty("messagesPerSecond").GetDouble() > 100);
        Assert.Equal(0, result.GetProperty("errors").GetInt64());
        Assert.True(result.GetProperty("latencyMicroseconds").GetProperty("p99").GetDouble() > 0);
    }

    [Fact]
    public async Task Echo_mode_prints_a_table_for_people()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var (code, run) = await CliRun.RunAsync("", "bench", "echo", server.Url().ToString(),
            "--connections", "2", "--size", "1000", "--text", "--duration", "1.5", "--warmup", "0");
        Assert.Equal(0, code);
        Assert.Contains("messages/s", run.Out);
        Assert.Contains("p99.9", run.Out);
        Assert.Contains("msg/s", run.Error); // the live progress line
    }

    [Fact]
    public async Task Idle_mode_measures_a_server_process()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var (code, run) = await CliRun.RunAsync("", "bench", "idle", server.Url().ToString(), "--connections", "50",
            "--warmup-connections", "10", "--settle", "0.2", "--pid", Environment.ProcessId.ToString(), "--json", "--quiet");
        Assert.Equal(0, code);
        var result = Json(run.Out);
        Assert.Equal(50, result.GetProperty("opened").GetInt32());
        Assert.True(result.TryGetProperty("kibPerConnection", out _));
    }

    [Fact]
    public async Task Handshake_mode_counts_clean_handshakes()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var (code, run) = await CliRun.RunAsync("", "bench", "handshake", server.Url().ToString(), "--parallel", "2",
            "--duration", "1", "--warmup", "0.2", "--json", "--quiet");
        Assert.Equal(0, code);
        var result = Json(run.Out);
        Assert.True(result.GetProperty("handshakesPerSecond").GetDouble() > 10);
        Assert.Equal(0, result.GetProperty("errors").GetInt64());
    }

    // Starts a server whose log lines are kept, with /echo and a hub at /hub.
    private static async Task<(Duplex.Server.WebSocketServer Server, System.Collections.Concurrent.ConcurrentQueue<string> Log)> StartLoggedAsync()
    {
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var hub = new Duplex.Hub.MessageHub();
        var server = await Loopback.StartEchoServerAsync(new Duplex.Server.WebSocketServerOptions { Log = log.Enqueue },
            s => s.Map("/hub", hub.HandleAsync, hub.RouteOptions));
        return (server, log);
    }

    // Waits for the server to log the end of `count` connections; returns their close lines.
    private static async Task<List<string>> ClosesAsync(System.Collections.Concurrent.ConcurrentQueue<string> log, int count)
    {
        for (int i = 0; i < 200 && log.Count(l => l.StartsWith("close ", StringComparison.Ordinal)) < count; i++)
            await Task.Delay(50);
        return log.Where(l => l.StartsWith("close ", StringComparison.Ordinal)).ToList();
    }

    [Fact]
    public async Task A_refused_upgrade_fails_the_run_with_the_http_status()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        foreach (var mode in new[] { "echo", "handshake" })
        {
            var (code, run) = await CliRun.RunAsync("", "bench", mode, server.Url("/nowhere").ToString(), "--duration", "0.5", "--warmup", "0", "--quiet");
            Assert.Equal(69, code);
            Assert.Contains("404", run.Error);
            Assert.Single(run.Error.TrimEnd().Split('\n'));
        }
    }

    [Fact]
    public async Task Latencies_are_printed_in_one_unit_and_the_warm_up_says_so()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var (code, run) = await CliRun.RunAsync("", "bench", "echo", server.Url().ToString(), "--connections", "2", "--in-flight", "1",
            "--duration", "1", "--warmup", "1.5");
        Assert.True(code == 0, run.Error + run.Out);
        string latency = run.Out.Split('\n').Single(l => l.TrimStart().StartsWith("latency", StringComparison.Ordinal));
        Assert.Matches(@"latency\s+(µs|ms): p50 [0-9.]+  p90 [0-9.]+  p99 [0-9.]+  p99\.9 [0-9.]+$", latency.TrimEnd());
        Assert.Contains("warming up", run.Error); // the progress line, before anything is measured
    }

    [Fact]
    public async Task Echo_and_handshake_modes_close_every_connection_with_1000()
    {
        var (server, log) = await StartLoggedAsync();
        await using var _ = server;
        var (code, run) = await CliRun.RunAsync("", "bench", "echo", server.Url().ToString(),
            "--connections", "5", "--in-flight", "8", "--duration", "1.5", "--warmup", "0", "--json", "--quiet");
        Assert.True(code == 0, run.Error + run.Out);
        var closes = await ClosesAsync(log, 5);
        Assert.Equal(5, closes.Count);
        Assert.All(closes, line => Assert.Contains(" /echo 1000 ", line));
    }

    [Fact]
    public async Task Fanout_mode_closes_every_connection_with_1000()
    {
        var (server, log) = await StartLoggedAsync();
        await using var _ = server;
        var (code, run) = await CliRun.RunAsync("", "bench", "fanout", server.Url("/hub").ToString(), "--subscribers", "10", "--duration", "1.5", "--json", "--quiet");
        Assert.True(code == 0, run.Error + run.Out);
        var closes = await ClosesAsync(log, 11);
        Assert.Equal(11, closes.Count); // ten subscribers and the publisher
        Assert.All(closes, line => Assert.Contains(" /hub 1000 ", line));
    }

    [Fact]
    public async Task Handshake_mode_measures_wss_with_a_self_signed_certificate()
    {
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { Certificate = TestCertificates.Localhost });
        var (refusedCode, refused) = await CliRun.RunAsync("", "bench", "handshake", server.Url(scheme: "wss").ToString(),
            "--parallel", "1", "--duration", "0.5", "--warmup", "0", "--json", "--quiet");
        Assert.NotEqual(0, refusedCode); // the certificate is checked unless --insecure
        var (code, run) = await CliRun.RunAsync("", "bench", "handshake", server.Url(scheme: "wss").ToString(), "--insecure",
            "--parallel", "2", "--duration", "1", "--warmup", "0", "--json", "--quiet");
        Assert.True(code == 0, run.Error + run.Out);
        Assert.True(Json(run.Out).GetProperty("handshakesPerSecond").GetDouble() > 5);
    }

    [Theory]
    [InlineData("bench needs a mode")]
    [InlineData("unknown bench mode 'fast'", "fast", "ws://h/")]
    [InlineData("bench needs the server's URL", "echo")]
    [InlineData("'http://h/' is not a ws:// or wss:// URL", "echo", "http://h/")]
    [InlineData("--connections must be a whole number", "echo", "ws://h/", "--connections", "0")]
    public async Task Bad_bench_arguments_are_one_line(string message, params string[] args)
    {
        var (code, run) = await CliRun.RunAsync("", ["bench", .. args]);
        Assert.Equal(64, code);
        Assert.StartsWith("duplex: " + message, run.Error);
    }
}

/// <summary>`duplex bench fanout` against `duplex serve`'s hub in this process.</summary>
// Counts deliveries against the publisher's window: alone, so that other tests' load cannot stall it.
[Collection(nameof(ScaleOutTests))]
public class FanoutBenchTests
{
    [Fact]
    public async Task Fanout_mode_counts_deliveries_to_every_subscriber()
    {
        using var stop = new CancellationTokenSource();
        var serve = new CliRun();
        var serving = serve.RunAsync(stop.Token, "serve", "--port", "0", "--quiet");
        string url = (await serve.WaitForServingAsync()).Replace("/echo", "/hub");
        // Two runs on the server: each has a channel of its own, so the second starts clean.
        foreach (int run in new[] { 1, 2 })
        {
            var (code, output) = await CliRun.RunAsync("", "bench", "fanout", url, "--subscribers", "20", "--duration", "1", "--json", "--quiet");
            Assert.True(code == 0, output.Out + output.Error);
            var result = System.Text.Json.JsonDocument.Parse(output.Out.Trim().Split('\n')[^1]).RootElement;
            Assert.Equal(20, result.GetProperty("subscribers").GetInt32());
            long published = result.GetProperty("published").GetInt64();
            Assert.True(published > 0);
            Assert.Equal(published, result.GetProperty("acknowledged").GetInt64());
            // Every subscriber got every message, checked one by one after the drain; while
            // measuring, the publisher is never more than its window (32) ahead of any of them.
            Assert.Equal(0, result.GetProperty("lost").GetInt64());
            Assert.Equal(0, result.GetProperty("gaps").GetInt64());
            Assert.Equal(0, result.GetProperty("duplicates").GetInt64());
            Assert.False(result.GetProperty("stalled").GetBoolean());
            long delivered = result.GetProperty("delivered").GetInt64();
            Assert.InRange(delivered, (published - 33) * 20, published * 20);
            Assert.Equal(0, result.GetProperty("errors").GetInt64());
            Assert.StartsWith("fanout-", result.GetProperty("channel").GetString(), StringComparison.Ordinal);
            Assert.InRange(result.GetProperty("generatorCpuPercent").GetDouble(), 0.0, 100.0 * Environment.ProcessorCount + 50);
            // Each delivery's latency, from the time stamp the publisher put in the data.
            var latency = result.GetProperty("latencyMicroseconds");
            Assert.InRange(latency.GetProperty("p50").GetDouble(), 0.1, 1_000_000);
            Assert.True(latency.GetProperty("p99").GetDouble() >= latency.GetProperty("p50").GetDouble());
        }
        stop.Cancel();
        await serving;
    }
}

/// <summary>`duplex bench fanout`'s checks against a hub that loses and repeats messages.</summary>
public class FanoutBenchCheckTests
{
    [Fact]
    public async Task A_hub_that_skips_and_repeats_messages_is_caught_and_the_run_fails()
    {
        // A fake hub: it answers joins and publishes as Duplex's does, but one subscriber never
        // gets offset 5 and gets offset 7 twice.
        var members = new System.Collections.Concurrent.ConcurrentDictionary<WebSocketConnection, int>();
        long offset = 0;
        int joins = 0;
        await using var server = new WebSocketServer(new WebSocketServerOptions { KeepAliveInterval = TimeSpan.Zero });
        server.Map("/hub", async (ws, upgrade, stopping) =>
        {
            await foreach (var message in ws.ReadAllAsync(stopping))
            {
                string text = message.GetText();
                if (text.Contains("\"type\":\"join\"", StringComparison.Ordinal))
                {
                    members[ws] = Interlocked.Increment(ref joins);
                    await ws.SendTextAsync($"{{\"type\":\"ok\",\"id\":\"join\",\"channel\":\"c\",\"epoch\":\"e\",\"offset\":{Interlocked.Read(ref offset)}}}", stopping);
                    continue;
                }
                var request = System.Text.Json.JsonDocument.Parse(text).RootElement;
                long at = Interlocked.Increment(ref offset);
                string data = request.GetProperty("data").GetString()!;
                string @event = $"{{\"type\":\"message\",\"channel\":\"c\",\"epoch\":\"e\",\"offset\":{at},\"data\":\"{data}\",\"from\":\"p\",\"time\":\"2026-01-01T00:00:00Z\"}}";
                await ws.SendTextAsync($"{{\"type\":\"ok\",\"id\":{request.GetProperty("id").GetInt64()},\"channel\":\"c\",\"epoch\":\"e\",\"offset\":{at}}}", stopping);
                foreach (var (member, number) in members)
                {
                    if (number == 1 && at == 5)
                        continue; // lost
                    await member.SendTextAsync(@event, stopping);
                    if (number == 1 && at == 7)
                        await member.SendTextAsync(@event, stopping); // repeated
                }
            }
            members.TryRemove(ws, out _);
        });
        await server.StartAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        var (code, run) = await CliRun.RunAsync("", "bench", "fanout", server.Url("/hub").ToString(),
            "--subscribers", "3", "--duration", "1", "--json", "--quiet");
        Assert.Equal(1, code);
        var result = System.Text.Json.JsonDocument.Parse(run.Out.Trim().Split('\n')[^1]).RootElement;
        Assert.True(result.GetProperty("published").GetInt64() > 7, run.Out);
        Assert.Equal(1, result.GetProperty("gaps").GetInt64());
        Assert.Equal(1, result.GetProperty("lost").GetInt64());
        Assert.Equal(1, result.GetProperty("duplicates").GetInt64());
    }
}

/// <summary>
/// `duplex bench soak`: its verdict, and a short soak of `duplex serve` in this process — alone,
/// since the process's descriptors and heap are what it measures.
/// </summary>
[Collection(nameof(SoakBenchTests))]
public class SoakBenchTests
{
    private static List<Duplex.Cli.Bench.SoakSample> Series(Func<int, long> heap) =>
        Enumerable.Range(0, 12).Select(i => new Duplex.Cli.Bench.SoakSample(i * 10, 100, 50, 200L << 20, heap(i), 120, 0)).ToList();

    [Fact]
    public void Memory_that_saws_around_a_level_is_flat_and_memory_that_climbs_is_not()
    {
        var flat = Series(i => (i % 3 == 0 ? 40L : 60L) << 20); // GC sawtooth
        Assert.Null(Duplex.Cli.Bench.SoakLoad.Growth(flat));
        var leaking = Series(i => (40L + 20 * i) << 20); // +20 MiB every 10 s
        Assert.Contains("GC heap grew", Duplex.Cli.Bench.SoakLoad.Growth(leaking));
        Assert.Equal(120, Duplex.Cli.Bench.SoakLoad.Slope(leaking, s => s.HeapBytes), 3);
    }

    [Fact]
    public async Task A_short_soak_of_duplex_serve_passes_with_nothing_lost_and_every_counter_back()
    {
        using var stop = new CancellationTokenSource();
        var serve = new CliRun();
        var serving = serve.RunAsync(stop.Token, "serve", "--port", "0", "--quiet");
        string url = (await serve.WaitForServingAsync()).Replace("/echo", "");
        var (code, run) = await CliRun.RunAsync("", "bench", "soak", url, "--connections", "200", "--duration", "8",
            "--sample", "1", "--warmup", "2", "--json", "--quiet");
        var result = System.Text.Json.JsonDocument.Parse(run.Out.Trim().Split('\n')[^1]).RootElement;
        Assert.True(code == 0, run.Out + run.Error);
        Assert.True(result.GetProperty("passed").GetBoolean());
        Assert.True(result.GetProperty("echoes").GetInt64() > 0);
        Assert.Equal(0, result.GetProperty("corrupted").GetInt64());
        Assert.True(result.GetProperty("deliveries").GetInt64() > 0);
        Assert.Equal(0, result.GetProperty("gaps").GetInt64());
        Assert.Equal("back to baseline", result.GetProperty("countersAfter").GetString());
        stop.Cancel();
        await serving;
    }
}

[CollectionDefinition(nameof(SoakBenchTests), DisableParallelization = true)]
public class SoakBenchCollection
{
}

/// <summary>docs/cli.md shows each command's help as the program prints it.</summary>
public class CliDocsTests
{
    [Theory]
    [InlineData("duplex --help", "--help")]
    [InlineData("duplex serve --help", "serve", "--help")]
    [InlineData("duplex connect --help", "connect", "--help")]
    [InlineData("duplex bench --help", "bench", "--help")]
    [InlineData("duplex autobahn-client --help", "autobahn-client", "--help")]
    public async Task Docs_cli_md_shows_the_help_the_program_prints(string title, params string[] args)
    {
        string page = (await File.ReadAllTextAsync(Repository.File("docs", "cli.md"))).Replace("\r\n", "\n");
        string head = $"## `{title}`\n\n```text\n";
        int start = page.IndexOf(head, StringComparison.Ordinal);
        Assert.True(start >= 0, $"docs/cli.md has no section '{title}'");
        start += head.Length;
        string documented = page[start..page.IndexOf("```\n", start, StringComparison.Ordinal)];
        var (code, run) = await CliRun.RunAsync("", args);
        Assert.Equal(0, code);
        Assert.Equal(run.Out.Replace("\r\n", "\n").TrimEnd() + "\n", documented); // update docs/cli.md with the new help
    }
}

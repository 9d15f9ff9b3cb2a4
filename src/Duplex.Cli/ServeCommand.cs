using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Duplex.Hub.Redis;
using Duplex.Server;
using Microsoft.Extensions.Logging;

namespace Duplex.Cli;

/// <summary>`duplex serve`: the server with its endpoints, until Ctrl+C or SIGTERM.</summary>
internal static class ServeCommand
{
    public const string Help = """
        usage: duplex serve [options]

        Runs the Duplex WebSocket server. Endpoints:
          /          the chat page (rooms, presence, reconnects by itself)
          /hub       WebSocket: the pub/sub hub (docs/hub-protocol.md)
          /echo      WebSocket: sends every message back with its type
          /echo.html a page for trying /echo from a browser
          /duplex-hub.js  the hub's browser client (ES module; types at /duplex-hub.d.ts)
          /metrics   Prometheus text format
          /healthz   plain HTTP: 'ok'

        options:
          --host ADDRESS          address or name to listen on (default 127.0.0.1; 0.0.0.0 for all)
          --port N                port (default 8080; 0 picks a free one)
          --tls-cert FILE         certificate for wss://: PEM (with --tls-key) or PFX
          --tls-key FILE          PEM private key for --tls-cert
          --tls-password TEXT     password of a PFX file
          --allow-origin ORIGIN   allow browser pages from this origin (repeatable; '*' for any;
                                default: only pages served by this server)
          --max-message-size N    largest message accepted, like 16m (default 16m)
          --max-connections N     open connections before new ones get 503 (default 100000)
          --max-pending-handshakes N       upgrades in progress before new ones get 503 (default 1000)
          --max-pending-per-address N      the same, per client address (default 256)
          --send-timeout SECONDS  drop a peer that reads nothing for this long while we send (default 60)
          --max-pending-send SIZE bytes waiting for a slow peer before it is dropped, like 64m (default 64m)
          --no-compression        do not accept permessage-deflate (on by default: browsers offer it)
          --history-size N        messages kept per hub channel for recovery (default 100)
          --history-minutes N     how long they are kept (default 10)
          --max-history SIZE      hub history over all channels, like 256m (default 256m)
          --max-channels N        hub channels per connection (default 100)
          --auth-secret SECRET    require HS256 JWTs on /hub (Authorization: Bearer, or ?access_token=)
          --redis HOST:PORT       share the hub with every node using this Redis (history, offsets and
                                delivery live there; --max-history does not apply: use Redis's maxmemory)
          --redis-password TEXT   Redis AUTH password
          --node-id ID            this node's name in Redis and the log (default: host-pid)
          --log-level LEVEL       trace, debug, info (default), warn, error or none; info shows
                                each connection's open and close, refusals and failed TLS handshakes
          --quiet                 log nothing but errors (--log-level error)
        """;

    private static async Task<RedisHubEngine> ConnectRedisAsync(string at, Arguments a, Hub.HubOptions hubOptions, Action<string>? log)
    {
        // HOST:PORT (or several, comma-separated); a full StackExchange.Redis string has options with '='.
        foreach (var endpoint in at.Split(',', StringSplitOptions.TrimEntries))
        {
            if (endpoint.Contains('='))
                continue;
            int colon = endpoint.LastIndexOf(':');
            if (endpoint.Length == 0 || colon == 0 || (colon > 0 && !(int.TryParse(endpoint.AsSpan(colon + 1), out int port) && port is > 0 and <= 65535)))
                throw new UsageException($"--redis must be HOST:PORT, not '{at}'");
        }
        try
        {
            return await RedisHubEngine.ConnectAsync(new RedisHubOptions
            {
                Configuration = at,
                Password = a.Value("redis-password"),
                NodeId = a.Value("node-id"),
                HistorySize = hubOptions.HistorySize,
                HistoryAge = hubOptions.HistoryAge,
                Log = log,
            });
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--redis: {e.Message.Split('\n')[0]}");
        }
    }

    // An IP address, or a name to resolve (localhost, a host's own name): the first IPv4 address,
    // else the first. `option` names the option in errors.
    internal static IPAddress Host(string text, string option = "--host")
    {
        if (IPAddress.TryParse(text, out var address))
            return address;
        if (text.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            return IPAddress.Loopback;
        try
        {
            var addresses = Dns.GetHostAddresses(text);
            return addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                ?? throw new UsageException($"{option} '{text}' has no address");
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new UsageException($"{option} '{text}' is not an IP address and does not resolve ({e.SocketErrorCode})");
        }
    }

    private static bool IsPfx(string path) => Path.GetExtension(path).ToLowerInvariant() is ".pfx" or ".p12";

    // A PEM file that carries its key too (cert and key in one file) needs no --tls-key. A file
    // that cannot be read is left to the loader, which says why.
    private static bool HoldsPrivateKey(string path)
    {
        try
        {
            return File.ReadAllText(path).Contains("PRIVATE KEY-----", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken stop)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await console.Out.WriteLineAsync(Help);
            return 0;
        }
        var a = Arguments.Parse(args,
            ["host", "port", "tls-cert", "tls-key", "tls-password", "allow-origin", "max-message-size", "max-connections",
             "max-pending-handshakes", "max-pending-per-address", "send-timeout", "max-pending-send",
             "history-size", "history-minutes", "max-history", "max-channels", "auth-secret",
             "redis", "redis-password", "node-id", "log-level"],
            ["quiet", "no-compression"]);
        if (a.Positional.Count > 0)
            throw new UsageException($"unexpected argument '{a.Positional[0]}'");
        var host = Host(a.Value("host") ?? "127.0.0.1");
        int port = a.Int("port", 8080, 0, 65535);
        if (a.Value("tls-key") is not null && a.Value("tls-cert") is null)
            throw new UsageException("--tls-key needs --tls-cert");
        if (a.Value("tls-cert") is { } pemCertificate && a.Value("tls-key") is null && !IsPfx(pemCertificate) && !HoldsPrivateKey(pemCertificate))
            throw new UsageException($"--tls-cert {pemCertificate} holds no private key: give its PEM key file with --tls-key (or use a .pfx)");

        if (a.Flag("quiet") && a.Value("log-level") is not null)
            throw new UsageException("--quiet and --log-level contradict each other");
        var logLevel = a.Flag("quiet") ? LogLevel.Error : ConsoleLog.ParseLevel(a.Value("log-level") ?? "info");
        var logger = new ConsoleLog(console.Error, logLevel);
        var options = new WebSocketServerOptions
        {
            MaxMessageSize = a.Bytes("max-message-size", 16L << 20, 1, 1L << 31),
            MaxConnections = a.Int("max-connections", 100_000, 1, int.MaxValue),
            MaxPendingHandshakes = a.Int("max-pending-handshakes", 1_000, 1, int.MaxValue),
            MaxPendingHandshakesPerAddress = a.Int("max-pending-per-address", 256, 1, int.MaxValue),
            SendTimeout = TimeSpan.FromSeconds(a.Seconds("send-timeout", 60, 0.1, 86_400)),
            MaxPendingSendBytes = a.Bytes("max-pending-send", 64L << 20, 1, 1L << 40),
            Compression = a.Flag("no-compression") ? null : PerMessageDeflateOptions.ForServer(),
            Logger = logger,
        };
        foreach (var origin in a.All("allow-origin"))
            options.AllowedOrigins.Add(origin);
        if (a.Value("tls-cert") is { } certificate)
        {
            try
            {
                options.Certificate = WebSocketServerOptions.LoadCertificate(certificate, a.Value("tls-key"), a.Value("tls-password"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
            {
                throw new UsageException($"cannot load the TLS certificate: {e.Message}");
            }
        }

        ResourceLimits.RaiseOpenFileLimit();
        var hubOptions = new Hub.HubOptions
        {
            HistorySize = a.Int("history-size", 100, 0, 1_000_000),
            HistoryAge = TimeSpan.FromMinutes(a.Int("history-minutes", 10, 1, 7 * 24 * 60)),
            MaxHistoryBytes = a.Bytes("max-history", 256L << 20, 0, 1L << 40),
            MaxChannelsPerConnection = a.Int("max-channels", 100, 1, 100_000),
        };
        if (a.Value("auth-secret") is { } secret)
        {
            if (secret.Length < 16)
                throw new UsageException("--auth-secret must be at least 16 characters");
            hubOptions.Authenticate = Hub.JwtAuthenticator.Create(secret);
        }
        if (a.Value("redis") is null && (a.Value("redis-password") ?? a.Value("node-id")) is not null)
            throw new UsageException("--redis-password and --node-id need --redis");
        await using var redis = a.Value("redis") is { } redisAt ? await ConnectRedisAsync(redisAt, a, hubOptions,
            logger.IsEnabled(LogLevel.Information) ? line => logger.LogInformation("{Line}", line) : null) : null;
        var hub = new Hub.MessageHub(hubOptions, redis);
        await using var server = new WebSocketServer(options);
        server.Map("/echo", Echo.Handler);
        server.Map("/hub", hub.HandleAsync, hub.RouteOptions);
        string chat = ReadResource("wwwroot/index.html"), echoPage = ReadResource("wwwroot/echo.html");
        server.MapHttp("/", _ => ValueTask.FromResult(new HttpReply(200, chat, "text/html; charset=utf-8")));
        server.MapHttp("/echo.html", _ => ValueTask.FromResult(new HttpReply(200, echoPage, "text/html; charset=utf-8")));
        // The browser client for the hub, for this page and any other web app (hence CORS: an
        // ES module imported from another origin needs it), with its TypeScript declarations.
        string hubScript = ReadResource("wwwroot/duplex-hub.js"), hubTypes = ReadResource("wwwroot/duplex-hub.d.ts");
        KeyValuePair<string, string>[] shared = [new("Access-Control-Allow-Origin", "*"), new("Cache-Control", "no-cache")];
        server.MapHttp("/duplex-hub.js", _ => ValueTask.FromResult(new HttpReply(200, hubScript, "text/javascript; charset=utf-8") { Headers = shared }));
        server.MapHttp("/duplex-hub.d.ts", _ => ValueTask.FromResult(new HttpReply(200, hubTypes, "text/plain; charset=utf-8") { Headers = shared }));
        using var meter = new MeterTotals(); // the "Duplex" meter's instruments, for /metrics
        server.MapHttp("/metrics", _ => ValueTask.FromResult(new HttpReply(200, hub.FormatMetrics(server) + meter.Format(), "text/plain; version=0.0.4; charset=utf-8")));
        server.MapHttp("/healthz", _ => ValueTask.FromResult(new HttpReply(200, "ok\n")));
        try
        {
            await server.StartAsync(new IPEndPoint(host, port));
        }
        catch (SocketException e)
        {
            await console.Error.WriteLineAsync($"duplex: cannot listen on {host}:{port}: {e.Message}");
            return DuplexCli.ExitUnavailable;
        }
        string scheme = options.Certificate is null ? "ws" : "wss";
        var bound = server.LocalEndPoint!;
        string http = options.Certificate is null ? "http" : "https";
        await console.Error.WriteLineAsync($"duplex {DuplexCli.Version} serving {scheme}://{Format(bound)}/echo and /hub, chat at {http}://{Format(bound)}/ (Ctrl+C to stop)");
        try
        {
            await Task.Delay(Timeout.Infinite, stop);
        }
        catch (OperationCanceledException)
        {
        }
        await console.Error.WriteLineAsync("stopping: closing connections with 1001");
        await server.StopAsync();
        return 0;
    }

    internal static string Format(IPEndPoint endPoint) =>
        endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]:{endPoint.Port}" : endPoint.ToString();

    private static string ReadResource(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"missing resource {name}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

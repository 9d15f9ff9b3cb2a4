using System.Text.RegularExpressions;
using Duplex.Cli;
using Microsoft.Playwright;

namespace Duplex.Browser.Tests;

/// <summary>One headless Chromium for the whole run (Debian's package, never a downloaded build).</summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        const string chromium = "/usr/bin/chromium";
        if (!File.Exists(chromium))
            throw new InvalidOperationException("Chromium is missing: run scripts/install-peers.sh as root, or apt-get install chromium");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"],
        });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
            await Browser.CloseAsync();
        _playwright?.Dispose();
    }
}

[CollectionDefinition("browser")]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>;

/// <summary>`duplex serve` run in-process on a free port, as a user would run it.</summary>
public sealed partial class ServeProcess : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly StringWriter _log = new();
    private Task<int> _run = Task.FromResult(0);

    public Uri HttpUrl { get; private set; } = null!;

    public Uri EchoUrl { get; private set; } = null!;

    /// <summary>The page for trying /echo (the chat page is at the root).</summary>
    public Uri EchoPageUrl => new(HttpUrl, "/echo.html");

    public string Log { get { lock (_log) return _log.ToString(); } }

    public static Task<ServeProcess> StartAsync(params string[] extra) => StartOnPortAsync(0, extra);

    /// <summary>On a given port: 0 for a free one, or the port of one stopped before (a restart).</summary>
    public static async Task<ServeProcess> StartOnPortAsync(int port, params string[] extra)
    {
        var serve = new ServeProcess();
        var console = new CliConsole(new StringReader(""), TextWriter.Null, TextWriter.Synchronized(serve._log), false);
        serve._run = DuplexCli.RunAsync(["serve", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), .. extra], console, serve._stop.Token);
        for (int i = 0; i < 200; i++)
        {
            var match = Serving().Match(serve.Log);
            if (match.Success)
            {
                serve.EchoUrl = new Uri(match.Groups[1].Value);
                serve.HttpUrl = new Uri(match.Groups[1].Value.Replace("ws://", "http://").Replace("/echo", "/"));
                return serve;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException("duplex serve did not start: " + serve.Log);
    }

    [GeneratedRegex(@"serving (wss?://\S+)")]
    private static partial Regex Serving();

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _run.WaitAsync(TimeSpan.FromSeconds(30));
    }
}

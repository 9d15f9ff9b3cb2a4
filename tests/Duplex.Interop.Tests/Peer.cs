using System.Diagnostics;

namespace Duplex.Interop.Tests;

/// <summary>
/// A real WebSocket implementation in another runtime (Python websockets, Node ws), run as a child
/// process on 127.0.0.1 from tests/peers. Killed when disposed; it also exits by itself after 60 s.
/// </summary>
public sealed class Peer : IAsyncDisposable
{
    private readonly Process _process;

    private Peer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public Uri Url(string path) => new($"ws://127.0.0.1:{Port}{path}");

    public static string PeersDirectory
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !Directory.Exists(Path.Combine(directory.FullName, "tests", "peers")))
                directory = directory.Parent;
            return directory is null ? throw new DirectoryNotFoundException("tests/peers not found above the test binaries")
                : Path.Combine(directory.FullName, "tests", "peers");
        }
    }

    /// <summary>How to start a peer, or a failure that says what to install.</summary>
    public static ProcessStartInfo Command(string peer, bool compress, params string[] args)
    {
        ProcessStartInfo info;
        if (peer == "python")
        {
            const string python = "/usr/bin/python3";
            if (!File.Exists(python) || Run(python, "-c", "import websockets") != 0)
                Assert.Fail("Python websockets is missing: run scripts/install-peers.sh as root, or apt-get install python3-websockets");
            info = new ProcessStartInfo(python) { ArgumentList = { Path.Combine(PeersDirectory, "python", "peer.py") } };
        }
        else
        {
            string script = Path.Combine(PeersDirectory, "node", "peer.js");
            if (!Directory.Exists(Path.Combine(PeersDirectory, "node", "node_modules", "ws")) || Run("node", "--version") != 0)
                Assert.Fail("Node ws is missing: run scripts/install-peers.sh (it needs node and npm)");
            info = new ProcessStartInfo("node") { ArgumentList = { script } };
        }
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        info.Environment["DUPLEX_PEER_COMPRESS"] = compress ? "1" : "0";
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        return info;
    }

    private static int Run(string file, params string[] args)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            process.WaitForExit(10_000);
            return process.HasExited ? process.ExitCode : -1;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return -1;
        }
    }

    /// <summary>Starts the peer's server and waits for the port it listens on.</summary>
    public static async Task<Peer> StartServerAsync(string peer, bool compress = false)
    {
        var process = Process.Start(Command(peer, compress, "server"))!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("listening ", StringComparison.Ordinal))
                return new Peer(process, int.Parse(line["listening ".Length..]));
        }
        string error = await process.StandardError.ReadToEndAsync();
        process.Kill(true);
        throw new InvalidOperationException($"the {peer} peer did not start: {error}");
    }

    /// <summary>Runs the peer's scripted client against a URL; returns its exit code and output lines.</summary>
    public static async Task<(int ExitCode, string[] Lines, string Error)> RunClientAsync(string peer, Uri url, bool compress = false)
    {
        using var process = Process.Start(Command(peer, compress, "client", url.ToString()))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        }
        catch (TimeoutException)
        {
            process.Kill(true);
            throw;
        }
        return (process.ExitCode, (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), await error);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
            _process.Kill(true);
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}

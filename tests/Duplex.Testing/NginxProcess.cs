using System.Diagnostics;

namespace Duplex.Testing;

/// <summary>
/// nginx (Debian's package) as the WebSocket load balancer of deploy/nginx.conf, with the listen
/// port and upstream nodes of a test: on 127.0.0.1, in the foreground, killed when disposed.
/// </summary>
public sealed class NginxProcess : IDisposable
{
    private readonly string _dir;
    private readonly Process _process;

    private NginxProcess(int port, Process process, string dir)
    {
        Port = port;
        _process = process;
        _dir = dir;
    }

    public int Port { get; }

    public static async Task<NginxProcess> StartAsync(IReadOnlyList<int> nodePorts)
    {
        int port = LocalPorts.Free();
        string config = File.ReadAllText(Path.Combine(Repository.Root, "deploy", "nginx.conf"));
        config = config.Replace("listen 127.0.0.1:8080;", $"listen 127.0.0.1:{port};", StringComparison.Ordinal);
        string servers = string.Concat(nodePorts.Select(p => $"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"));
        int first = config.IndexOf("        server 127.0.0.1:8081", StringComparison.Ordinal);
        int last = config.IndexOf("    }", first, StringComparison.Ordinal);
        config = config[..first] + servers + config[last..];
        string dir = Directory.CreateTempSubdirectory("duplex-nginx-").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "logs"));
        Directory.CreateDirectory(Path.Combine(dir, "tmp"));
        File.WriteAllText(Path.Combine(dir, "nginx.conf"), config);
        string binary = File.Exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";
        var process = Background.Start(binary, ["-p", dir, "-e", "logs/error.log", "-c", "nginx.conf", "-g", "daemon off;"],
            install: "run scripts/install-peers.sh (or apt-get install nginx)");
        var nginx = new NginxProcess(port, process, dir);
        await LocalPorts.WaitAsync(port, process);
        return nginx;
    }

    public Uri Url(string path) => new($"ws://127.0.0.1:{Port}{path}");

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5_000);
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

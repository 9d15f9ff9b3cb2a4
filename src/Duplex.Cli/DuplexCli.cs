using System.Net.Sockets;
using System.Reflection;

namespace Duplex.Cli;

/// <summary>The `duplex` command: picks the subcommand and turns every failure into one line and an exit code.</summary>
internal static class DuplexCli
{
    public const int ExitUsage = 64;        // sysexits EX_USAGE
    public const int ExitUnavailable = 69;  // sysexits EX_UNAVAILABLE: could not connect or listen
    public const int ExitSoftware = 70;     // sysexits EX_SOFTWARE: a bug of ours

    public const string Usage = """
        usage: duplex <command> [options]

        commands:
          serve      run the server: echo at /echo, the pub/sub hub at /hub, a chat page at /,
                     /metrics; several nodes share a hub through Redis (--redis)
          connect    open a WebSocket and talk to it from the terminal (like wscat)
          bench      load-test a WebSocket server: echo, idle, handshake, fanout or soak
          autobahn-client  run the Autobahn TestSuite's cases against the Duplex client
          version    print the version

        'duplex <command> --help' shows a command's options.
        """;

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken stop)
    {
        string command = args.Length > 0 ? args[0] : "";
        string[] rest = args.Length > 0 ? args[1..] : [];
        try
        {
            switch (command)
            {
                case "serve":
                    return await ServeCommand.RunAsync(rest, console, stop);
                case "connect":
                    return await ConnectCommand.RunAsync(rest, console, stop);
                case "autobahn-client":
                    return await AutobahnCommand.RunAsync(rest, console, stop);
                case "bench":
                    return await Bench.BenchCommand.RunAsync(rest, console, stop);
                case "version" or "--version":
                    await console.Out.WriteLineAsync($"duplex {Version}");
                    return 0;
                case "help" or "--help" or "-h":
                    await console.Out.WriteLineAsync(Usage);
                    return 0;
                case "":
                    throw new UsageException("no command given");
                default:
                    throw new UsageException($"unknown command '{command}'");
            }
        }
        catch (UsageException e)
        {
            // One line, as every other failure.
            await console.Error.WriteLineAsync($"duplex: {e.Message} ({(command is "serve" or "connect" or "autobahn-client" or "bench"
                ? $"'duplex {command} --help' lists its options"
                : "'duplex --help' lists the commands")})");
            return ExitUsage;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return 130;
        }
        catch (Exception e)
        {
            // Never a stack trace: one line that says what went wrong.
            await console.Error.WriteLineAsync($"duplex: {Describe(e)}");
            return e is SocketException or IOException or WebSocketHandshakeException or TimeoutException or InvalidDataException
                ? ExitUnavailable
                : ExitSoftware;
        }
    }

    public static string Describe(Exception e) => e switch
    {
        SocketException s => $"{s.Message} ({s.SocketErrorCode})",
        AggregateException { InnerExceptions.Count: 1 } a => Describe(a.InnerException!),
        _ when e.InnerException is SocketException inner => $"{e.Message}: {Describe(inner)}",
        _ => e.Message,
    };

    public static string Version =>
        typeof(DuplexCli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}

using System.Runtime.InteropServices;
using Duplex.Cli;

// The load generator reads its raw echo sockets through .NET's socket engine: completions run
// inline on the engine's thread, with no hop to the thread pool (read before the first socket).
if (args.Length > 0 && args[0] == "bench" && Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");

using var stop = new CancellationTokenSource();
int interrupts = 0;
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C stops gracefully; a second one ends the process at once.
    if (Interlocked.Increment(ref interrupts) == 1)
    {
        e.Cancel = true;
        stop.Cancel();
    }
};
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stop.Cancel();
});
return await DuplexCli.RunAsync(args, CliConsole.System(), stop.Token);

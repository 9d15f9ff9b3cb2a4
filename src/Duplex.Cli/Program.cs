using System.Runtime.InteropServices;
using Duplex.Cli;

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

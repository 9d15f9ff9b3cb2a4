using System.Diagnostics;

namespace Duplex.Testing;

/// <summary>A server process a test starts (redis-server, nginx, a `duplex serve` node): its output drained, never shown.</summary>
public static class Background
{
    /// <summary>Starts <paramref name="file"/>; when it is not installed, says how to install it (<paramref name="install"/>).</summary>
    public static Process Start(string file, IEnumerable<string> args, string? workingDirectory = null, string? install = null)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory ?? "" };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e) when (install is not null)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} is not installed: {install}", e);
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}

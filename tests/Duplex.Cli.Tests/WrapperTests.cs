using System.Diagnostics;
using Duplex.Testing;

namespace Duplex.Cli.Tests;

/// <summary>
/// `./duplex` at the repository's root, as the quick start uses it: it builds only when a source
/// is newer than its last build, then becomes the program (exec), so signals sent to its PID
/// reach the server. Alone (it may build in Release).
/// </summary>
[Collection(nameof(ScaleOutTests))]
public class WrapperTests
{
    private static ProcessStartInfo Wrapper(params string[] args)
    {
        var info = new ProcessStartInfo(Path.Combine(Repository.Root, "duplex")) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        return info;
    }

    private static async Task<(int Code, string Out, string Error)> RunAsync(params string[] args)
    {
        using var process = Process.Start(Wrapper(args))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(4)); // a first build takes a while
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task Builds_only_when_stale_and_passes_arguments_and_exit_codes_through()
    {
        var (code, _, _) = await RunAsync("version"); // builds if this checkout changed since the last build
        Assert.Equal(0, code);
        var help = await RunAsync("--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("usage: duplex", help.Out);
        Assert.DoesNotContain("building", help.Error); // up to date: the built program runs at once
        var bad = await RunAsync("serve", "--bogus");
        Assert.Equal(64, bad.Code);
        Assert.StartsWith("duplex: unknown option '--bogus'", bad.Error);
    }

    [Fact]
    public async Task A_signal_to_the_wrappers_pid_stops_the_server_gracefully()
    {
        await RunAsync("version"); // built
        using var process = Process.Start(Wrapper("serve", "--port", "0"))!;
        try
        {
            bool serving = false;
            while (!serving && await process.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line)
                serving = line.Contains("serving ws://", StringComparison.Ordinal);
            Assert.True(serving);
            using (var kill = Process.Start("kill", ["-INT", process.Id.ToString()]))
                await kill.WaitForExitAsync();
            string rest = await process.StandardError.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("stopping", rest); // the server itself got the signal (dotnet run did not pass it on)
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task The_install_script_installs_a_tool_that_runs()
    {
        var directory = Directory.CreateTempSubdirectory("duplex-tool-");
        try
        {
            var info = new ProcessStartInfo(Path.Combine(Repository.Root, "scripts", "install.sh")) { RedirectStandardError = true, RedirectStandardOutput = true };
            info.ArgumentList.Add("--tool-path");
            info.ArgumentList.Add(directory.FullName);
            using (var install = Process.Start(info)!)
            {
                string error = await install.StandardError.ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(4));
                await install.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
                Assert.True(install.ExitCode == 0, error);
            }
            using var tool = Process.Start(new ProcessStartInfo(Path.Combine(directory.FullName, "duplex"), "version") { RedirectStandardOutput = true })!;
            string version = await tool.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await tool.WaitForExitAsync();
            Assert.Equal(0, tool.ExitCode);
            Assert.StartsWith("duplex ", version);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}

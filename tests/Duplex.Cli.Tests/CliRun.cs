using System.Text;
using System.Text.RegularExpressions;
using Duplex.Cli;

namespace Duplex.Cli.Tests;

/// <summary>Runs the `duplex` command in-process with text for input and captured output.</summary>
internal sealed partial class CliRun
{
    private readonly StringBuilder _out = new(), _error = new();
    private readonly TextWriter _outWriter, _errorWriter;

    public CliRun(string input = "")
    {
        _outWriter = TextWriter.Synchronized(new StringWriter(_out));
        _errorWriter = TextWriter.Synchronized(new StringWriter(_error));
        Console = new CliConsole(new StringReader(input), _outWriter, _errorWriter, interactive: false);
    }

    public CliConsole Console { get; }

    public string Out { get { lock (_outWriter) return _out.ToString(); } }

    public string Error { get { lock (_errorWriter) return _error.ToString(); } }

    public Task<int> RunAsync(CancellationToken stop = default, params string[] args) => DuplexCli.RunAsync(args, Console, stop);

    public static async Task<(int Code, CliRun Run)> RunAsync(string input, params string[] args)
    {
        var run = new CliRun(input);
        int code = await run.RunAsync(default, args).WaitAsync(TimeSpan.FromSeconds(30));
        return (code, run);
    }

    /// <summary>Waits until `duplex serve` has said where it listens; returns that URL.</summary>
    public async Task<string> WaitForServingAsync()
    {
        for (int i = 0; i < 200; i++)
        {
            var match = ServingLine().Match(Error);
            if (match.Success)
                return match.Groups[1].Value;
            await Task.Delay(50);
        }
        throw new TimeoutException("serve did not start: " + Error);
    }

    [GeneratedRegex(@"serving (wss?://\S+)")]
    private static partial Regex ServingLine();
}

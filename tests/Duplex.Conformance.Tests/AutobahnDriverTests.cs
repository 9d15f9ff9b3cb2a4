using Duplex.Cli;

namespace Duplex.Conformance.Tests;

/// <summary>`duplex autobahn-client` against the fuzzingserver stand-in, over the real driver protocol.</summary>
public class AutobahnDriver
{
    private static async Task<(int Code, string Out, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = new CliConsole(new StringReader(""), TextWriter.Synchronized(output), TextWriter.Synchronized(error), false);
        int code = await DuplexCli.RunAsync(args, console, default).WaitAsync(TimeSpan.FromMinutes(2));
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Runs_every_case_then_updates_the_reports()
    {
        // A slice of the suite that touches every category quickly (no 9.x).
        var cases = CaseBook.All.Where(c => !c.Id.StartsWith("9.", StringComparison.Ordinal)).ToList();
        await using var server = new FuzzingServer(cases);
        var (code, output, error) = await RunAsync("autobahn-client", "--url", server.BaseUri.ToString(), "--agent", "duplex-test");
        Assert.True(code == 0, error);
        Assert.Equal(cases.Count, server.Results.Count);
        Assert.All(server.Results, r => Assert.True(r.Value is null, $"case {cases[r.Key - 1]}: {r.Value}"));
        Assert.Equal(1, server.ReportUpdates["duplex-test"]);
        Assert.Contains($"case {cases.Count}/{cases.Count}: closed", output);
        Assert.Contains("reports updated", output);
    }

    [Fact]
    public async Task Runs_a_range_of_cases()
    {
        await using var server = new FuzzingServer(CaseBook.All);
        var (code, _, error) = await RunAsync("autobahn-client", "--url", server.BaseUri.ToString(), "--cases", "3-5");
        Assert.True(code == 0, error);
        Assert.Equal([3, 4, 5], server.Results.Keys.Order());
    }

    [Fact]
    public async Task A_refused_handshake_is_recorded_and_the_next_cases_still_run()
    {
        await using var server = new FuzzingServer(CaseBook.All.Take(5).ToList());
        server.BadUpgrades.Add(2);
        var (code, output, error) = await RunAsync("autobahn-client", "--url", server.BaseUri.ToString());
        Assert.True(code == 0, error);
        Assert.Equal([1, 3, 4, 5], server.Results.Keys.Order());
        Assert.Contains("case 2/5: handshake refused", output);
        Assert.Contains("case 5/5: closed", output);
        Assert.Equal(1, server.ReportUpdates["duplex"]);
    }

    [Theory]
    [InlineData("--url", "http://x", "is not a ws:// or wss:// URL")]
    [InlineData("--agent", "a b", "--agent must be")]
    public async Task Bad_arguments_are_one_line(string option, string value, string message)
    {
        var (code, _, error) = await RunAsync("autobahn-client", option, value);
        Assert.Equal(64, code);
        Assert.Contains(message, error.Split('\n')[0]);
    }

    [Fact]
    public async Task A_case_range_beyond_the_suite_is_refused()
    {
        await using var server = new FuzzingServer(CaseBook.All.Take(3).ToList());
        var (code, _, error) = await RunAsync("autobahn-client", "--url", server.BaseUri.ToString(), "--cases", "2-9");
        Assert.Equal(64, code);
        Assert.Contains("--cases must look like 1-3", error);
    }
}

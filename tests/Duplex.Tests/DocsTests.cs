using System.Diagnostics;
using System.Text.RegularExpressions;
using Duplex.Testing;

namespace Duplex.Tests;

/// <summary>
/// The docs pages show their samples as they are, the samples run and print what the pages say,
/// and every link between pages leads somewhere.
/// </summary>
public partial class DocsTests
{
    public static TheoryData<string, string> Samples => new()
    {
        { "quickstart.md", "QuickStart" },
        { "hub.md", "HubSample" },
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public void A_page_shows_its_sample_verbatim(string page, string sample)
    {
        string text = File.ReadAllText(Repository.File("docs", page)).Replace("\r\n", "\n");
        string program = File.ReadAllText(Repository.File("docs", "examples", sample, "Program.cs")).Replace("\r\n", "\n");
        Assert.Contains(program, text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("QuickStart", new[] { "echo: hello", "echo: 3 bytes", "closed: 1000", "heard: ada: hi all" })]
    [InlineData("HubSample", new[] { "presence: ada joined lobby", "published at offset 1", ": hello", "members: 2", "history: 1 message(s)", "refused: forbidden" })]
    public async Task A_sample_runs_and_prints_what_its_page_says(string sample, string[] expected)
    {
        string configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        string dll = Repository.File("docs", "examples", sample, "bin", configuration, "net10.0", sample + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is built with the solution");
        using var process = Process.Start(new ProcessStartInfo("dotnet", [dll])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{sample} did not finish within 60 s; it printed:\n{await output}");
        }
        string printed = await output;
        Assert.True(process.ExitCode == 0, $"{sample} exited with {process.ExitCode}:\n{printed}\n{await errors}");
        foreach (string line in expected)
            Assert.Contains(line, printed, StringComparison.Ordinal);
        if (sample == "QuickStart")
            Assert.Equal(3, Regex.Matches(printed, "heard: ada: hi all").Count); // each of the three members
    }

    [Fact]
    public void Every_relative_link_in_the_docs_and_the_readme_leads_to_a_file()
    {
        var pages = Directory.GetFiles(Repository.File("docs"), "*.md").Append(Repository.File("README.md"));
        var broken = new List<string>();
        foreach (string page in pages)
        {
            foreach (Match link in MarkdownLink().Matches(File.ReadAllText(page)))
            {
                string target = link.Groups[1].Value;
                if (target.Contains("://", StringComparison.Ordinal) || target.StartsWith('#') || target.StartsWith("mailto:", StringComparison.Ordinal))
                    continue;
                string path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(page)!, target.Split('#')[0]));
                if (!File.Exists(path) && !Directory.Exists(path))
                    broken.Add($"{Path.GetFileName(page)}: {target}");
            }
        }
        Assert.True(broken.Count == 0, "broken links: " + string.Join(", ", broken));
    }

    [GeneratedRegex(@"\]\(([^)\s]+)\)")]
    private static partial Regex MarkdownLink();
}

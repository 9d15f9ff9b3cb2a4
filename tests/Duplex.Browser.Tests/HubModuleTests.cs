using System.Diagnostics;
using Duplex.Testing;

namespace Duplex.Browser.Tests;

/// <summary>/duplex-hub.js and its TypeScript declarations, as a web developer takes them.</summary>
public class HubModuleTests
{
    [Fact]
    public async Task Serve_gives_the_module_and_its_types_with_cors()
    {
        await using var serve = await ServeProcess.StartAsync();
        using var http = new HttpClient();
        foreach (var (path, type, must) in new[]
        {
            ("/duplex-hub.js", "text/javascript", "export class DuplexHub"),
            ("/duplex-hub.d.ts", "text/plain", "export class DuplexHub extends EventTarget"),
        })
        {
            using var response = await http.GetAsync(new Uri(serve.HttpUrl, path));
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(type, response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("*", Assert.Single(response.Headers.GetValues("Access-Control-Allow-Origin")));
            Assert.Contains(must, await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task The_declarations_type_check_a_typical_use_with_tsc_strict()
    {
        string root = Repository.Root;
        string tsc = Path.Combine(root, "tests/peers/node/node_modules/typescript/bin/tsc");
        Assert.True(File.Exists(tsc), "TypeScript is missing: run scripts/install-peers.sh (npm ci in tests/peers/node)");
        var info = new ProcessStartInfo("node") { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { tsc, "--noEmit", "--strict", "--target", "es2022", "--lib", "es2022,dom", "--module", "esnext",
                     "--moduleResolution", "bundler", "docs/examples/duplex-hub-example.ts" })
            info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        string output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(process.ExitCode == 0, output);
    }
}

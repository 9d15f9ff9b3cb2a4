using System.Diagnostics;
using Duplex.Testing;

namespace Duplex.AspNetCore.Tests;

/// <summary>
/// The packages as a user gets them: scripts/pack.sh builds them into a local feed, and a fresh
/// console app and a fresh ASP.NET Core app reference them from there (not the projects),
/// build, and make a round trip.
/// </summary>
public class PackageTests
{
    private const string ConsoleProgram = """
        using System.Net;
        using Duplex;
        using Duplex.Server;

        var server = new WebSocketServer(new WebSocketServerOptions());
        server.Map("/echo", async (connection, request, stopping) =>
        {
            await foreach (var message in connection.ReadAllAsync(stopping))
                await connection.SendAsync(message.Payload, message.Type, stopping);
        });
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        await using (var client = await WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{server.LocalEndPoint!.Port}/echo")))
        {
            await client.SendTextAsync("from a package");
            Console.WriteLine($"echo: {(await client.ReceiveAsync()).GetText()}");
        }
        await server.StopAsync();
        """;

    private const string WebProgram = """
        using System.Net.WebSockets;
        using Duplex;
        using Duplex.AspNetCore;
        using Microsoft.AspNetCore.Hosting.Server;
        using Microsoft.AspNetCore.Hosting.Server.Features;

        var builder = WebApplication.CreateSlimBuilder(args);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddDuplex();
        var app = builder.Build();
        app.MapDuplex("/echo", async (WebSocketConnection ws) =>
        {
            await foreach (var message in ws.ReadAllAsync())
                await ws.SendAsync(message.Payload, message.Type);
        });
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var client = new ClientWebSocket();
        await client.ConnectAsync(new Uri($"ws://{address.Authority}/echo"), CancellationToken.None);
        await client.SendAsync("through Kestrel"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[100];
        var result = await client.ReceiveAsync(buffer, CancellationToken.None);
        Console.WriteLine($"echo: {System.Text.Encoding.UTF8.GetString(buffer, 0, result.Count)}");
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        await app.StopAsync();
        """;

    [Fact]
    public async Task Fresh_apps_build_and_run_against_the_packed_packages()
    {
        var work = Directory.CreateTempSubdirectory("duplex-packages-");
        try
        {
            string feed = Path.Combine(work.FullName, "feed");
            await RunAsync(Repository.File("scripts", "pack.sh"), [feed], Repository.Root);
            string version = File.ReadAllText(Repository.File("Directory.Build.props")).Split("<Version>")[1].Split("</Version>")[0];
            Assert.True(File.Exists(Path.Combine(feed, $"Duplex.AspNetCore.{version}.nupkg")));
            // Duplex's packages from the fresh feed only, into a package cache of this test's own (so
            // nothing comes from the projects or an older pack); their dependencies (the logging
            // abstractions) from this machine's package cache, which the build filled: no network.
            string machineCache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            File.WriteAllText(Path.Combine(work.FullName, "nuget.config"), $"""
                <configuration>
                  <config><add key="globalPackagesFolder" value="{Path.Combine(work.FullName, "packages")}" /></config>
                  <packageSources><clear /><add key="local" value="{feed}" /><add key="machine" value="{machineCache}" /></packageSources>
                  <packageSourceMapping>
                    <packageSource key="local"><package pattern="Duplex" /><package pattern="Duplex.*" /></packageSource>
                    <packageSource key="machine"><package pattern="*" /></packageSource>
                  </packageSourceMapping>
                </configuration>
                """);
            string console = await CreateAppAsync(work.FullName, "ConsoleApp", "Microsoft.NET.Sdk", "Duplex", version, ConsoleProgram);
            Assert.Contains("echo: from a package", await RunAsync("dotnet", ["run", "--project", console], work.FullName), StringComparison.Ordinal);
            string web = await CreateAppAsync(work.FullName, "WebApp", "Microsoft.NET.Sdk.Web", "Duplex.AspNetCore", version, WebProgram);
            Assert.Contains("echo: through Kestrel", await RunAsync("dotnet", ["run", "--project", web], work.FullName), StringComparison.Ordinal);
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    private static async Task<string> CreateAppAsync(string root, string name, string sdk, string package, string version, string program)
    {
        string dir = Path.Combine(root, name);
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, name + ".csproj"), $"""
            <Project Sdk="{sdk}">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{package}" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(dir, "Program.cs"), program);
        return dir;
    }

    private static async Task<string> RunAsync(string file, string[] args, string directory)
    {
        var start = new ProcessStartInfo(file, args)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} took over 4 minutes");
        }
        string text = await output + await error;
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)} exited {process.ExitCode}:\n{text}");
        return text;
    }
}

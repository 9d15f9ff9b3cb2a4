using System.Diagnostics;
using Duplex.Hub;
using Duplex.Testing;

namespace Duplex.AspNetCore.Tests;

/// <summary>docs/aspnetcore.md shows the sample as it is, and the sample works as the page says.</summary>
public class DocsSampleTests
{
    private static string Sample(string file) => Repository.File("docs", "examples", "AspNetCoreSample", file);

    [Theory]
    [InlineData("Program.cs")]
    [InlineData("appsettings.json")]
    public void The_page_shows_the_sample_files_verbatim(string file)
    {
        string page = File.ReadAllText(Repository.File("docs", "aspnetcore.md")).Replace("\r\n", "\n");
        string content = File.ReadAllText(Sample(file)).Replace("\r\n", "\n");
        Assert.Contains(content, page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sample_app_echoes_and_serves_the_hub()
    {
        string dll = Sample(Path.Combine("bin", AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug",
            "net10.0", "AspNetCoreSample.dll"));
        Assert.True(File.Exists(dll), $"{dll} is built with the solution");
        int port = LocalPorts.Free();
        var start = new ProcessStartInfo("dotnet", [dll, "--urls", $"http://127.0.0.1:{port}"])
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        try
        {
            await LocalPorts.WaitAsync(port, process);
            var options = new WebSocketClientOptions { Compression = new PerMessageDeflateOptions() };
            await using (var echo = await WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo"), options))
            {
                Assert.NotNull(echo.Compression);
                await echo.SendTextAsync("hello from the docs");
                Assert.Equal("hello from the docs", (await echo.ReceiveAsync()).GetText());
                await echo.SendBinaryAsync(new byte[1024 * 1024 + 1]); // past the sample's MaxMessageSize
                Assert.Equal(Protocol.CloseStatus.MessageTooBig, (await echo.ReceiveAsync()).CloseStatus);
            }
            // appsettings.json allows pages from https://app.example.com, and no other site's.
            var page = new WebSocketClientOptions { Origin = "https://app.example.com" };
            await using (var fromApp = await WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo"), page))
                Assert.Equal(ConnectionState.Open, fromApp.State);
            var refused = await Assert.ThrowsAsync<WebSocketHandshakeException>(() =>
                WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo"), new WebSocketClientOptions { Origin = "https://evil.example" }));
            Assert.Equal(403, refused.StatusCode);
            await using var reader = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/hub"));
            await using var writer = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/hub"));
            await reader.JoinAsync("news");
            await writer.JoinAsync("news");
            await writer.PublishAsync("news", "extra");
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var message = await reader.ReadAllAsync(timeout.Token).FirstAsync(timeout.Token);
            Assert.Equal("extra", message.Data.GetString());
            using var http = new HttpClient();
            Assert.StartsWith("Duplex on ASP.NET Core", await http.GetStringAsync($"http://127.0.0.1:{port}/"), StringComparison.Ordinal);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }
}

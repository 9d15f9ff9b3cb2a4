using System.Diagnostics;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Tests.Server;

/// <summary>wss:// under load: a burst is queued and served, and returning clients skip the full handshake.</summary>
public class TlsTests
{
    [Fact]
    public async Task A_burst_of_500_concurrent_wss_connects_is_served_within_the_handshake_timeout()
    {
        // All at once, no client-side gate: the server queues what it cannot serve yet (the
        // report: 254 of 500 reset by the 10 s timeout with an RSA certificate and no cached chain).
        const int Total = 500;
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions
        {
            Certificate = TestCertificates.Localhost,
            KeepAliveInterval = TimeSpan.Zero,
        });
        var url = server.Url(scheme: "wss");
        var options = new WebSocketClientOptions { AllowUntrustedCertificate = true, ConnectTimeout = TimeSpan.FromSeconds(60) };
        var clock = Stopwatch.StartNew();
        var attempts = await Task.WhenAll(Enumerable.Range(0, Total).Select(async _ =>
        {
            try
            {
                return (Connection: await WebSocketClient.ConnectAsync(url, options), Error: (Exception?)null, At: clock.Elapsed);
            }
            catch (Exception e)
            {
                return (Connection: (WebSocketConnection?)null, Error: e, At: clock.Elapsed);
            }
        }));
        var failures = attempts.Where(a => a.Error is not null).ToList();
        var slowest = attempts.Max(a => a.At);
        foreach (var attempt in attempts)
        {
            if (attempt.Connection is { } connection)
                await connection.DisposeAsync();
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {Total} failed; first: {failures.FirstOrDefault().Error?.Message}");
        Assert.True(slowest < TimeSpan.FromSeconds(10), $"the last connect finished after {slowest.TotalSeconds:0.0} s");
    }

    public static TheoryData<string> TlsVersions => new() { "-tls1_2", "-tls1_3" };

    [Theory]
    [MemberData(nameof(TlsVersions))]
    public async Task A_returning_client_resumes_its_tls_session(string version)
    {
        // Resumption skips the certificate signature and key exchange: a returning client costs
        // the server a fraction of a full handshake. Checked with OpenSSL's own client, which
        // says "Reused" for a resumed session (TLS 1.2 session ids, TLS 1.3 tickets).
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { Certificate = TestCertificates.Localhost });
        string target = $"127.0.0.1:{server.LocalEndPoint!.Port}";
        string session = Path.Combine(Path.GetTempPath(), $"duplex-tls-session-{Guid.NewGuid():N}.pem");
        try
        {
            var first = await OpenSslAsync("-connect", target, version, "-sess_out", session);
            Assert.Contains("New, TLS", first);
            var second = await OpenSslAsync("-connect", target, version, "-sess_in", session);
            Assert.Contains("Reused, TLS", second);
        }
        finally
        {
            File.Delete(session);
        }
    }

    // Runs `openssl s_client` with an upgrade request on its input, so the server answers 101
    // (and, on TLS 1.3, sends its session tickets) before the client leaves.
    private static async Task<string> OpenSslAsync(params string[] args)
    {
        var info = new ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("s_client");
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Fail("openssl is missing: run scripts/install-peers.sh as root, or apt-get install openssl");
            throw;
        }
        using var _ = process;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        string key = Duplex.Protocol.Handshake.CreateKey();
        await process.StandardInput.WriteAsync($"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n");
        await process.StandardInput.FlushAsync();
        await Task.Delay(500); // the 101 and the tickets arrive
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
        }
        return await output + await error;
    }
}

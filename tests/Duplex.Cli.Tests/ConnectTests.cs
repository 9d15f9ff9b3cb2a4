using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Duplex.Protocol;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Cli.Tests;

/// <summary>`duplex connect`'s wscat/websocat features: -1, files, colour, TLS trust, listen mode, reconnect.</summary>
public class ConnectTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>Standard input that gives lines when the test feeds them, and ends when it says so.</summary>
    private sealed class FedInput : TextReader
    {
        private readonly Channel<string?> _lines = Channel.CreateUnbounded<string?>();

        public void Feed(string? line) => _lines.Writer.TryWrite(line);

        public override async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken) =>
            await _lines.Reader.ReadAsync(cancellationToken);
    }

    private static async Task<int> RunAsync(CliRun run, TextReader input, CancellationToken stop, params string[] args)
    {
        var console = new CliConsole(input, run.Console.Out, run.Console.Error, false);
        return await DuplexCli.RunAsync(args, console, stop);
    }

    private static async Task<string> WaitForAsync(Func<string> text, string pattern)
    {
        for (var until = DateTime.UtcNow + Wait; DateTime.UtcNow < until; await Task.Delay(25))
        {
            var match = Regex.Match(text(), pattern);
            if (match.Success)
                return match.Groups.Count > 1 ? match.Groups[1].Value : match.Value;
        }
        throw new TimeoutException($"'{pattern}' never appeared in: {text()}");
    }

    [Fact]
    public async Task One_message_sends_all_input_as_one_message_prints_the_first_answer_and_exits()
    {
        await using var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/silent", async (ws, _, _) =>
        {
            while (!(await ws.ReceiveAsync()).IsClose)
            {
            }
        }));
        var (code, run) = await CliRun.RunAsync("line one\nline two\n", "connect", server.Url().ToString(), "-1");
        Assert.True(code == 0, run.Error);
        Assert.Equal("line one\nline two\n", run.Out.Replace("\r\n", "\n")); // one message, its final newline dropped
        Assert.Contains("closed: 1000", run.Error);

        var (silent, quiet) = await CliRun.RunAsync("anyone?\n", "connect", server.Url("/silent").ToString(), "--one-message", "-w", "0.3");
        Assert.Equal(124, silent);
        Assert.Contains("no answer within 0.3 s", quiet.Error);
    }

    [Fact]
    public async Task A_file_goes_as_one_binary_message_with_binary_file_and_with_slash_file()
    {
        await using var server = await Loopback.StartEchoServerAsync();
        string path = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(path, [0x00, 0x01, 0xfe, 0xff]);
            var (code, run) = await CliRun.RunAsync("", "connect", server.Url().ToString(), "--binary-file", path, "-w", "0.5");
            Assert.True(code == 0, run.Error);
            Assert.Equal("0001feff\n", run.Out.Replace("\r\n", "\n"));

            var (slashCode, slash) = await CliRun.RunAsync($"/file {path}\n/file /nonexistent/x\n", "connect", server.Url().ToString(), "--slash");
            Assert.True(slashCode == 0, slash.Error);
            Assert.Equal("0001feff\n", slash.Out.Replace("\r\n", "\n"));
            Assert.Contains("/file: cannot read '/nonexistent/x'", slash.Error);

            var (missing, bad) = await CliRun.RunAsync("", "connect", server.Url().ToString(), "--binary-file", "/nonexistent/x");
            Assert.Equal(64, missing);
            Assert.StartsWith("duplex: --binary-file: cannot read '/nonexistent/x'", bad.Error);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public async Task Colour_only_on_a_terminal_that_has_it_and_not_with_no_color(bool colourConsole, bool noColor)
    {
        await using var server = await Loopback.StartEchoServerAsync();
        var run = new CliRun();
        var console = new CliConsole(new StringReader(""), run.Console.Out, run.Console.Error, interactive: true, colour: colourConsole);
        string[] args = ["connect", server.Url().ToString(), "-x", "hi", "-w", "0.3", .. noColor ? new[] { "--no-color" } : []];
        Assert.Equal(0, await DuplexCli.RunAsync(args, console, default).WaitAsync(Wait));
        bool coloured = colourConsole && !noColor;
        Assert.Equal(coloured, run.Out.Contains('\u001b'));
        Assert.Equal(coloured, run.Error.Contains('\u001b'));
        Assert.Contains("< ", run.Out); // the marker of received lines on a terminal, in colour or not
        Assert.Contains("hi", run.Out);
    }

    [Fact]
    public async Task A_private_ca_is_trusted_with_ca_and_nothing_else_is()
    {
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { Certificate = TestCertificates.Localhost });
        string url = server.Url(scheme: "wss").ToString();
        var directory = Directory.CreateTempSubdirectory();
        try
        {
            var (ca, _) = TestCertificates.WritePem(TestCertificates.Localhost, directory.FullName);
            var (refused, run) = await CliRun.RunAsync("", "connect", url, "-x", "hi", "-w", "0.2");
            Assert.Equal(69, refused); // not trusted by the system
            var (code, trusted) = await CliRun.RunAsync("", "connect", url, "--ca", ca, "-x", "hi", "-w", "0.2");
            Assert.True(code == 0, trusted.Error);
            Assert.Equal("hi\n", trusted.Out.Replace("\r\n", "\n"));
            var other = TestCertificates.Create("other.test");
            var (otherCa, _) = TestCertificates.WritePem(other, Directory.CreateTempSubdirectory().FullName);
            var (wrong, _) = await CliRun.RunAsync("", "connect", url, "--ca", otherCa, "-x", "hi", "-w", "0.2");
            Assert.Equal(69, wrong);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_client_certificate_is_presented_with_cert_and_key()
    {
        // A TLS server that asks for a client certificate and keeps what it got.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var presented = new TaskCompletionSource<X509Certificate?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var serving = Task.Run(async () =>
        {
            using var socket = await listener.AcceptAsync();
            await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = TestCertificates.Localhost,
                ClientCertificateRequired = true,
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    presented.TrySetResult(certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
                    return true;
                },
            });
            presented.TrySetResult(null);
        });
        var client = ClientCertificate("duplex-test-client");
        var directory = Directory.CreateTempSubdirectory();
        try
        {
            var (certificate, key) = TestCertificates.WritePem(client, directory.FullName);
            int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
            await CliRun.RunAsync("", "connect", $"wss://127.0.0.1:{port}/", "-n", "--cert", certificate, "--key", key, "--connect-timeout", "3");
            var got = await presented.Task.WaitAsync(Wait);
            Assert.NotNull(got);
            Assert.Equal(client.Thumbprint, ((X509Certificate2)got!).Thumbprint);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
        await serving.WaitAsync(Wait).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private static X509Certificate2 ClientCertificate(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false)); // client authentication
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }

    [Fact]
    public async Task Listen_mode_prints_what_clients_send_and_sends_input_lines_to_all_of_them()
    {
        var run = new CliRun();
        var input = new FedInput();
        using var stop = new CancellationTokenSource();
        var listening = RunAsync(run, input, stop.Token, "connect", "-l", "0");
        string url = await WaitForAsync(() => run.Error, @"listening on (ws://\S+/)");
        await using var first = await WebSocketClient.ConnectAsync(new Uri(url));
        await using var second = await WebSocketClient.ConnectAsync(new Uri(url));
        await first.SendTextAsync("from the first");
        await WaitForAsync(() => run.Out, "from the first");
        await WaitForAsync(() => run.Error, "client 2 connected");
        input.Feed("to everyone");
        Assert.Equal("to everyone", (await first.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        Assert.Equal("to everyone", (await second.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
        await second.CloseAsync();
        await WaitForAsync(() => run.Error, "client 2 closed: 1000");
        stop.Cancel(); // Ctrl+C
        Assert.Equal(0, await listening.WaitAsync(Wait));
        var closed = await first.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(CloseStatus.GoingAway, closed.CloseStatus);
    }

    [Fact]
    public async Task Reconnect_connects_again_after_a_lost_connection_and_the_next_lines_go_through()
    {
        int connections = 0;
        await using var server = await Loopback.StartEchoServerAsync(configure: s => s.Map("/flaky", async (ws, request, stopping) =>
        {
            if (Interlocked.Increment(ref connections) == 1)
            {
                await ws.ReceiveAsync(); // the first line, then the connection is lost
                ws.Abort();
                return;
            }
            await Echo.Handler(ws, request, stopping);
        }));
        var run = new CliRun();
        var input = new FedInput();
        var talking = RunAsync(run, input, default, "connect", server.Url("/flaky").ToString(), "--reconnect");
        await WaitForAsync(() => run.Error, "connected to");
        input.Feed("lost with the first connection");
        await WaitForAsync(() => run.Error, "reconnecting in");
        await WaitForAsync(() => run.Error, "(?s)reconnecting in.*connected to");
        input.Feed("after the reconnect");
        await WaitForAsync(() => run.Out, "after the reconnect");
        input.Feed(null); // end of input: close with 1000
        Assert.Equal(0, await talking.WaitAsync(Wait));
        Assert.Equal(2, connections);
        Assert.Contains("closed: 1006", run.Error);
        Assert.EndsWith("closed: 1000", run.Error.TrimEnd());
    }
}

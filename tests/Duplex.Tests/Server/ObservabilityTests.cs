using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.Sockets;
using Duplex.Diagnostics;
using Duplex.Protocol;
using Duplex.Server;
using Duplex.Testing;
using Microsoft.Extensions.Logging;

namespace Duplex.Tests.Server;

/// <summary>The server's ILogger events and the "Duplex" meter, as an operator's tools see them.</summary>
public class ObservabilityTests
{
    private sealed class ListLogger : ILogger
    {
        public ConcurrentQueue<(LogLevel Level, string Text, Exception? Error)> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue((logLevel, formatter(state, exception), exception));

        public async Task<(LogLevel Level, string Text, Exception? Error)> WaitForAsync(string fragment)
        {
            for (int i = 0; i < 500; i++)
            {
                foreach (var line in Lines)
                {
                    if (line.Text.Contains(fragment, StringComparison.Ordinal))
                        return line;
                }
                await Task.Delay(10);
            }
            throw new Xunit.Sdk.XunitException($"no log line with '{fragment}' in:\n{string.Join('\n', Lines.Select(l => l.Text))}");
        }
    }

    [Fact]
    public async Task The_logger_gets_opens_closes_refusals_tls_failures_and_handler_errors_at_their_levels()
    {
        var logger = new ListLogger();
        var options = new WebSocketServerOptions { Logger = logger, Certificate = TestCertificates.Localhost };
        await using var server = await Loopback.StartEchoServerAsync(options, s =>
            s.Map("/fail", (_, _, _) => throw new InvalidOperationException("handler bug")));
        var tls = new WebSocketClientOptions { AllowUntrustedCertificate = true };
        await using (var client = await WebSocketClient.ConnectAsync(server.Url(scheme: "wss"), tls))
            await client.CloseAsync();
        Assert.Equal(LogLevel.Information, (await logger.WaitForAsync("open 127.0.0.1")).Level);
        Assert.Equal(LogLevel.Information, (await logger.WaitForAsync(" /echo 1000 after ")).Level);

        tls.Origin = "https://elsewhere.example";
        await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(server.Url(scheme: "wss"), tls));
        var refused = await logger.WaitForAsync("403 origin https://elsewhere.example is not allowed");
        Assert.Equal(LogLevel.Information, refused.Level);

        // A plain-text client on the TLS port: one line, no exception object.
        using (var plain = new TcpClient())
        {
            await plain.ConnectAsync("127.0.0.1", server.LocalEndPoint!.Port);
            await plain.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
            _ = await plain.GetStream().ReadAsync(new byte[100]); // the server hangs up
        }
        var tlsFailure = await logger.WaitForAsync("tls handshake from 127.0.0.1");
        Assert.Equal(LogLevel.Information, tlsFailure.Level);
        Assert.Null(tlsFailure.Error);

        tls.Origin = null;
        await using (var failing = await WebSocketClient.ConnectAsync(server.Url("/fail", "wss"), tls))
            Assert.Equal(CloseStatus.InternalServerError, (await failing.ReceiveAsync()).CloseStatus);
        var error = await logger.WaitForAsync("handler failed");
        Assert.Equal(LogLevel.Error, error.Level);
        Assert.IsType<InvalidOperationException>(error.Error);
    }

    [Fact]
    public async Task The_Duplex_meter_counts_connections_messages_bytes_closes_and_refusals()
    {
        var sums = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == DuplexMeter.Name)
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string key = instrument.Name;
            foreach (var (name, tag) in tags)
                key += $"|{name}={tag}";
            if (instrument.IsObservable)
                sums[key] = value; // a running total
            else
                sums.AddOrUpdate(key, value, (_, sum) => sum + value);
        });
        listener.Start();
        listener.RecordObservableInstruments();
        long Sum(string key) => sums.GetValueOrDefault(key);
        // Other tests run at the same time: every figure is checked as at least what this test did.
        var before = new Dictionary<string, long>(sums);
        long Grew(string key) => Sum(key) - before.GetValueOrDefault(key);

        await using var server = await Loopback.StartEchoServerAsync();
        await using (var client = await WebSocketClient.ConnectAsync(server.Url()))
        {
            for (int i = 0; i < 3; i++)
            {
                await client.SendBinaryAsync(new byte[1000]);
                await client.ReceiveAsync();
            }
            await client.CloseAsync();
        }
        await Assert.ThrowsAsync<WebSocketHandshakeException>(() =>
            WebSocketClient.ConnectAsync(server.Url(), new WebSocketClientOptions { Origin = "https://elsewhere.example" }));
        await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(server.Url("/nowhere")));
        for (int i = 0; i < 200 && Grew("duplex.connections.closed|duplex.role=server|duplex.close.code=1000") < 1; i++)
            await Task.Delay(10);

        listener.RecordObservableInstruments();
        Assert.True(Grew("duplex.connections.opened|duplex.role=server") >= 1);
        Assert.True(Grew("duplex.connections.opened|duplex.role=client") >= 1);
        Assert.True(Grew("duplex.connections.closed|duplex.role=server|duplex.close.code=1000") >= 1);
        Assert.True(Grew("duplex.messages.received") >= 6); // 3 at the server, 3 echoes at the client
        Assert.True(Grew("duplex.messages.sent") >= 6);
        Assert.True(Grew("duplex.bytes.received") >= 6000);
        Assert.True(Grew("duplex.handshake.failures|duplex.failure.reason=403") >= 1);
        Assert.True(Grew("duplex.handshake.failures|duplex.failure.reason=404") >= 1);
    }
}

using System.Diagnostics;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Tests.Server;

/// <summary>A burst of connects is served first come, first served: none waits far longer than the rest.</summary>
public class HandshakeBurstTests
{
    [Fact]
    public async Task No_connection_of_a_burst_waits_much_longer_than_the_average()
    {
        const int Total = 3000, InFlight = 64;
        await using var server = await Loopback.StartEchoServerAsync(new WebSocketServerOptions { KeepAliveInterval = TimeSpan.Zero });
        var endPoint = server.LocalEndPoint!;
        var latencies = new double[Total];
        var open = new RawClient?[Total];
        using var gate = new SemaphoreSlim(InFlight);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Total).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                var started = clock.Elapsed;
                open[i] = await RawClient.UpgradeAsync(endPoint); // the connections stay open, as subscribers do
                latencies[i] = (clock.Elapsed - started).TotalMilliseconds;
            }
            finally
            {
                gate.Release();
            }
        }));
        double average = latencies.Average(), worst = latencies.Max();
        foreach (var client in open)
            await client!.DisposeAsync();
        // Before the fix the first connections waited for the whole burst (seconds) while the average was milliseconds.
        Assert.True(worst < Math.Max(3000, 25 * average), $"worst {worst:0} ms against an average of {average:0.0} ms (first: {latencies[0]:0} ms)");
    }
}

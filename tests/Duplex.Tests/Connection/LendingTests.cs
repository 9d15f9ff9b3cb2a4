using System.Text;
using Duplex.Cli;
using Duplex.Server;
using Duplex.Testing;

namespace Duplex.Tests.Connection;

/// <summary>
/// The lending rule under races: a payload returned by ReceiveAsync stays intact until the next
/// ReceiveAsync, whatever runs meanwhile (close, dispose, abort, keep-alive, sends).
/// </summary>
public class LendingTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static string Payload(int run) => $"{{\"run\":{run},\"text\":\"{new string('p', 40 + run % 200)}\"}}";

    // Connects 200 times to /echo, sends a text, receives the echo and hands it to the check,
    // which says whether the payload still read as sent; returns how many did not.
    private static async Task<int> CountCorruptedAsync(Func<WebSocketConnection, WebSocketMessage, string, int, Task<bool>> check)
    {
        await using var server = await Loopback.StartEchoServerAsync();
        int corrupted = 0;
        for (int run = 0; run < 200; run++)
        {
            var client = await WebSocketClient.ConnectAsync(server.Url());
            string sent = Payload(run);
            await client.SendTextAsync(sent);
            var echo = await client.ReceiveAsync().AsTask().WaitAsync(Wait);
            if (!await check(client, echo, sent, run))
                corrupted++;
            await client.DisposeAsync();
        }
        return corrupted;
    }

    // The issue's deterministic repro: receive an echo, close, then read the payload still held.
    [Fact]
    public async Task A_payload_held_across_CloseAsync_is_unchanged_in_200_runs()
    {
        Assert.Equal(0, await CountCorruptedAsync(async (client, echo, sent, _) =>
        {
            await client.CloseAsync().WaitAsync(Wait);
            return echo.GetText() == sent;
        }));
    }

    // The issue's racy repro: one task reads the payload a little later while another closes.
    [Fact]
    public async Task A_payload_read_while_another_task_closes_is_unchanged_in_200_runs()
    {
        Assert.Equal(0, await CountCorruptedAsync(async (client, echo, sent, run) =>
        {
            var closing = Task.Run(() => client.CloseAsync());
            await Task.Delay(run % 3);
            bool intact = echo.GetText() == sent;
            await closing.WaitAsync(Wait);
            return intact;
        }));
    }

    // Receive against close / dispose / abort / send races, 10,000 times over in-process pairs.
    [Fact]
    public async Task Receive_against_close_dispose_abort_and_send_races_corrupts_nothing_in_10000_runs()
    {
        int corrupted = 0, runs = 0;
        const int Pairs = 1000, PerPair = 10;
        for (int p = 0; p < Pairs; p++)
        {
            var (client, serverSide) = await Loopback.CreateConnectionPairAsync(
                new WebSocketOptions { CloseTimeout = TimeSpan.FromSeconds(2) }, new WebSocketOptions { CloseTimeout = TimeSpan.FromSeconds(2) });
            var echo = Echo.RunAsync(serverSide);
            for (int i = 0; i < PerPair; i++)
            {
                int run = p * PerPair + i;
                string sent = Payload(run);
                await client.SendTextAsync(sent);
                var message = await client.ReceiveAsync().AsTask().WaitAsync(Wait);
                if (message.IsClose)
                    break;
                bool last = i == PerPair - 1;
                // The race: something else happens on the connection while the payload is held.
                Task other = (last ? run % 3 : 3) switch
                {
                    0 => Task.Run(() => client.CloseAsync()),
                    1 => Task.Run(async () => await client.DisposeAsync()),
                    2 => Task.Run(client.Abort),
                    _ => Task.Run(async () => await client.SendBinaryAsync(new byte[64])),
                };
                // Read it while the other thing runs, and again after.
                string during = message.GetText();
                await other.WaitAsync(Wait);
                string after = message.GetText();
                if (during != sent || after != sent)
                    corrupted++;
                runs++;
                if (!last)
                {
                    // The echo of the binary send.
                    var binary = await client.ReceiveAsync().AsTask().WaitAsync(Wait);
                    Assert.Equal(MessageType.Binary, binary.Type);
                }
            }
            await client.DisposeAsync();
            serverSide.Abort();
            await echo.WaitAsync(Wait);
            await serverSide.DisposeAsync();
        }
        Assert.Equal(Pairs * PerPair, runs);
        Assert.Equal(0, corrupted);
    }

    // Keep-alive reads ahead while the application holds a payload and does not receive.
    [Fact]
    public async Task Keep_alive_reading_ahead_leaves_a_held_payload_intact()
    {
        var options = new WebSocketOptions { KeepAliveInterval = TimeSpan.FromMilliseconds(40), KeepAliveTimeout = TimeSpan.FromSeconds(5) };
        await using var pair = await ConnectionPair.CreateAsync(options, options);
        await pair.Client.SendTextAsync("first message, held by the application");
        var held = await pair.Server.ReceiveAsync().AsTask().WaitAsync(Wait);
        // While the server holds it: more messages and pings arrive and keep-alive reads them ahead.
        await pair.Client.SendTextAsync(new string('2', 3000));
        await pair.Client.PingAsync("ping"u8.ToArray());
        await Task.Delay(400);
        Assert.Equal("first message, held by the application", held.GetText());
        Assert.Equal(new string('2', 3000), (await pair.Server.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
    }
}

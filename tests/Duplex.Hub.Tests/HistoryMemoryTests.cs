using System.Runtime.InteropServices;
using System.Text;
using Duplex.Testing;

namespace Duplex.Hub.Tests;

/// <summary>History cannot eat the heap: bounded in bytes over all channels, expired on a timer, kept once.</summary>
public class HistoryMemoryTests
{
    private static byte[] Json(int size) => Encoding.UTF8.GetBytes("\"" + new string('x', size - 2) + "\"");

    [Fact]
    public void History_over_all_channels_stays_within_its_byte_bound_and_the_flooder_pays_first()
    {
        var engine = new InMemoryHubEngine(1000, TimeSpan.FromHours(1), maxBytes: 4 << 20);
        engine.Publish("quiet", Json(1000), "ada");
        for (int channel = 0; channel < 50; channel++)
        {
            for (int i = 0; i < 20; i++)
                engine.Publish($"flood-{channel}", Json(64 * 1024), "eve");
            Assert.True(engine.HistoryBytes <= (4 << 20) + 70 * 1024, $"{engine.HistoryBytes} bytes kept");
        }
        Assert.NotEmpty(engine.History("flood-49", 1000)); // the latest are kept
        Assert.Null(engine.Since("flood-0", 0).Missed);     // what was dropped is reported, not replayed
    }

    [Fact]
    public void Expired_history_is_dropped_on_the_timer_even_in_channels_nobody_uses_again()
    {
        var clock = new ManualClock();
        var engine = new InMemoryHubEngine(100, TimeSpan.FromMinutes(10), clock);
        for (int i = 0; i < 100; i++)
            engine.Publish($"room-{i % 10}", Json(10_000), "ada");
        Assert.True(engine.HistoryBytes > 1_000_000);
        clock.Advance(TimeSpan.FromMinutes(11));
        engine.Sweep(); // what the engine's one-second timer does
        Assert.Equal(0, engine.HistoryBytes);
        Assert.Equal(0, engine.ChannelLogs); // nothing kept and nobody in them: the channels are gone too
    }

    [Fact]
    public void A_channel_that_comes_back_after_its_log_was_swept_is_a_new_epoch_and_old_positions_are_not_recovered()
    {
        var clock = new ManualClock();
        var engine = new InMemoryHubEngine(100, TimeSpan.FromMinutes(10), clock);
        var first = engine.Publish("room", Json(10), "ada");
        Assert.Equal(1, first.Offset);
        Assert.Equal(2, engine.Publish("room", Json(10), "ada").Offset);
        clock.Advance(TimeSpan.FromMinutes(11));
        engine.Sweep();
        var again = engine.Publish("room", Json(10), "ada");
        Assert.NotEqual(first.Epoch, again.Epoch);
        Assert.Equal(1, again.Offset); // offsets count within an epoch
        // A client at (old epoch, 2) must not take the new offset 1 for something it has seen.
        var position = engine.Since("room", 2, first.Epoch);
        Assert.Null(position.Missed);
        Assert.Equal(again.Epoch, position.Epoch);
        Assert.Equal(1, position.Latest);
        // The same epoch recovers as before.
        Assert.Single(engine.Since("room", 0, again.Epoch).Missed!);
    }

    [Fact]
    public void A_quiet_channel_with_members_keeps_its_epoch()
    {
        var clock = new ManualClock();
        var engine = new InMemoryHubEngine(100, TimeSpan.FromMinutes(10), clock) { InUse = channel => channel == "lobby" };
        string epoch = engine.Since("lobby", long.MaxValue).Epoch; // a join makes the stream
        engine.Since("elsewhere", long.MaxValue);
        clock.Advance(TimeSpan.FromHours(2));
        engine.Sweep();
        Assert.Equal(1, engine.ChannelLogs);
        Assert.Equal(epoch, engine.Publish("lobby", Json(10), "ada").Epoch);
        Assert.Equal([1L], engine.Since("lobby", 0, epoch).Missed!.Select(m => m.Offset));
    }

    [Fact]
    public void A_kept_message_holds_one_copy_of_its_bytes()
    {
        var engine = new InMemoryHubEngine(10, TimeSpan.FromHours(1));
        var message = engine.Publish("room", Json(100_000), "ada");
        Assert.True(MemoryMarshal.TryGetArray(message.Data, out var data));
        Assert.True(MemoryMarshal.TryGetArray(message.Event.Payload, out var frame));
        Assert.Same(frame.Array, data.Array); // the data is a slice of the framed event
        Assert.Equal(Json(100_000), message.Data.ToArray());
    }
}

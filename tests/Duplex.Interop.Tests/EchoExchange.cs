namespace Duplex.Interop.Tests;

/// <summary>What the Duplex client exchanges with every echo peer: text, binary, 16 MiB and a fragmented message.</summary>
internal static class EchoExchange
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    public static async Task RunAsync(WebSocketConnection ws, string peer)
    {
        await ws.SendTextAsync($"hello {peer} ✓");
        var text = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(MessageType.Text, text.Type);
        Assert.Equal($"hello {peer} ✓", text.GetText());

        await ws.SendBinaryAsync(new byte[] { 0, 1, 2, 255 });
        var binary = await ws.ReceiveAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(MessageType.Binary, binary.Type);
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, binary.ToArray());

        var big = new byte[16 * 1024 * 1024];
        new Random(3).NextBytes(big);
        await ws.SendBinaryAsync(big);
        Assert.Equal(big, (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).ToArray());

        await using (var writer = await ws.BeginMessageAsync(MessageType.Text))
        {
            await writer.WriteAsync("frag"u8.ToArray());
            await writer.WriteAsync("ment"u8.ToArray());
            await writer.CompleteAsync("ed"u8.ToArray());
        }
        Assert.Equal("fragmented", (await ws.ReceiveAsync().AsTask().WaitAsync(Wait)).GetText());
    }
}

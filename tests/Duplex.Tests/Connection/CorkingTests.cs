using Duplex.Protocol;
using Duplex.Testing;
using Duplex.Transport;

namespace Duplex.Tests.Connection;

/// <summary>One flush policy: what is sent during a loop turn goes out in one write when the turn ends.</summary>
public class CorkingTests
{
    /// <summary>A transport in memory that counts write calls.</summary>
    private sealed class CountingTransport : Duplex.Transport.Transport
    {
        private readonly Queue<byte> _incoming = new();
        public int Writes;
        public readonly MemoryStream Written = new();
        public bool OutOfMemory;   // the next read fails as an allocation at the heap's limit would

        public void Feed(byte[] bytes)
        {
            foreach (var b in bytes)
                _incoming.Enqueue(b);
        }

        public override int TryRead(Span<byte> buffer)
        {
            if (OutOfMemory)
            {
                OutOfMemory = false; // the big allocation failed; small ones still succeed
                throw new OutOfMemoryException();
            }
            if (_incoming.Count == 0)
                return -1;
            int n = 0;
            while (n < buffer.Length && _incoming.Count > 0)
                buffer[n++] = _incoming.Dequeue();
            return n;
        }

        private readonly TaskCompletionSource _disposed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        // Nothing more will come: the wait ends only when the connection drops the transport.
        public override ValueTask WaitReadableAsync(CancellationToken cancellationToken) => new(_disposed.Task);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) => new(TryRead(buffer.Span));

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
        {
            Writes++;
            Written.Write(buffer.Span);
            return default;
        }

        public override ValueTask ShutdownSendAsync() => default;

        public override void Dispose() => _disposed.TrySetResult();
    }

    private static (CountingTransport, WebSocketConnection) Create(int messages)
    {
        var transport = new CountingTransport();
        for (int i = 0; i < messages; i++)
            transport.Feed(Frames.Client(Opcode.Binary, new byte[] { (byte)i, 1, 2, 3 }));
        var connection = new WebSocketConnection(transport, Role.Server, new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero }, null, default, null, null);
        return (transport, connection);
    }

    // Echoes n messages; every step completes synchronously, as on a loop thread.
    private static void EchoAll(WebSocketConnection connection, int n)
    {
        for (int i = 0; i < n; i++)
        {
            var receive = connection.ReceiveAsync();
            Assert.True(receive.IsCompletedSuccessfully);
            var send = connection.SendBinaryAsync(receive.Result.Payload);
            Assert.True(send.IsCompletedSuccessfully);
        }
    }

    [Fact]
    public async Task Sixteen_echoes_answered_in_one_turn_are_one_write()
    {
        var (transport, connection) = Create(16);
        var turn = new LoopTurn();
        turn.Begin();
        EchoAll(connection, 16);
        Assert.Equal(0, transport.Writes); // nothing yet: corked until the turn ends
        turn.End();
        Assert.Equal(1, transport.Writes);
        transport.Written.Position = 0;
        for (int i = 0; i < 16; i++)
        {
            var frame = await RawFrame.ReadAsync(transport.Written);
            Assert.Equal(new byte[] { (byte)i, 1, 2, 3 }, frame!.Payload);
        }
    }

    [Fact]
    public void Outside_a_turn_each_send_is_written_at_once()
    {
        var (transport, connection) = Create(16);
        EchoAll(connection, 16);
        Assert.Equal(16, transport.Writes);
    }

    [Fact]
    public async Task A_close_is_never_corked_and_goes_out_after_what_was_gathered()
    {
        var (transport, connection) = Create(3);
        var turn = new LoopTurn();
        turn.Begin();
        EchoAll(connection, 3);
        var close = connection.CloseAsync();
        Assert.Equal(1, transport.Writes); // the close flushed the echoes with it
        turn.End();
        Assert.Equal(1, transport.Writes);
        transport.Written.Position = 0;
        var opcodes = new List<Opcode>();
        while (await RawFrame.ReadAsync(transport.Written) is { } frame)
            opcodes.Add(frame.Opcode);
        Assert.Equal([Opcode.Binary, Opcode.Binary, Opcode.Binary, Opcode.Close], opcodes);
        connection.Abort();
        await close.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Running_out_of_memory_fails_that_connection_with_1011_and_frees_it()
    {
        var (transport, connection) = Create(0);
        transport.OutOfMemory = true;
        var closed = await connection.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(closed.IsClose);
        Assert.Equal(CloseStatus.InternalServerError, closed.CloseStatus);
        transport.Written.Position = 0;
        var frame = await RawFrame.ReadAsync(transport.Written);
        Assert.Equal(Opcode.Close, frame!.Opcode);
        Assert.Equal(1011, frame.CloseCode); // the peer is told why
        Assert.Equal(ConnectionState.Closed, connection.State);
    }

    [Fact]
    public async Task A_send_batch_off_the_loop_writes_each_connection_once_with_its_messages_in_order()
    {
        var pairs = Enumerable.Range(0, 3).Select(_ => Create(0)).ToArray();
        var prepared = Enumerable.Range(0, 10).Select(i => PreparedMessage.Create(new byte[] { (byte)i, 9 }, MessageType.Binary)).ToArray();
        using (SendBatch.Begin())
        {
            foreach (var message in prepared)
                foreach (var (_, connection) in pairs)
                    Assert.True(connection.SendAsync(message).IsCompletedSuccessfully);
            using (SendBatch.Begin()) // nested: the outer batch's end writes
                _ = pairs[0].Item2.SendBinaryAsync(new byte[] { 10, 9 });
            Assert.All(pairs, p => Assert.Equal(0, p.Item1.Writes));
        }
        foreach (var (transport, _) in pairs)
        {
            Assert.Equal(1, transport.Writes);
            transport.Written.Position = 0;
            for (int i = 0; i < 10; i++)
                Assert.Equal(new byte[] { (byte)i, 9 }, (await RawFrame.ReadAsync(transport.Written))!.Payload);
        }
        Assert.Equal(new byte[] { 10, 9 }, (await RawFrame.ReadAsync(pairs[0].Item1.Written))!.Payload);
        // After the batch, sends on this thread go out at once again.
        _ = pairs[1].Item2.SendBinaryAsync(new byte[] { 11 });
        Assert.Equal(2, pairs[1].Item1.Writes);
    }

    [Fact]
    public void A_send_batch_ended_on_another_thread_leaves_nothing_waiting_on_the_first()
    {
        var (transport, connection) = Create(0);
        var batch = SendBatch.Begin();
        _ = connection.SendBinaryAsync(new byte[] { 1 });
        var other = new Thread(batch.Dispose); // as after an await that resumed elsewhere
        other.Start();
        other.Join();
        Assert.Equal(1, transport.Writes);
        _ = connection.SendBinaryAsync(new byte[] { 2 }); // the first thread's stale batch is closed: written at once
        Assert.Equal(2, transport.Writes);
        using (SendBatch.Begin()) // and a new batch on it works
            _ = connection.SendBinaryAsync(new byte[] { 3 });
        Assert.Equal(3, transport.Writes);
    }
}

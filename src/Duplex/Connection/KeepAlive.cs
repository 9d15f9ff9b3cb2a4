using System.Buffers;

namespace Duplex;

public sealed partial class WebSocketConnection
{
    // Runs on a timer: pings a quiet peer and drops one that stays silent past the timeout.
    internal void OnKeepAliveTick()
    {
        if (_terminated || _closeSent)
            return;
        StartReadAhead();
        if (_payloadLent || (_aheadCopy is not null && _aheadInReader))
            return; // the application is not reading what the peer sends: no way to judge the peer
        long now = Environment.TickCount64;
        long lastReceived = Volatile.Read(ref _lastReceivedTicks);
        long pingSent = Volatile.Read(ref _pingSentTicks);
        if (pingSent > lastReceived)
        {
            if (now - pingSent > (long)_options.KeepAliveTimeout.TotalMilliseconds)
                Terminate(Protocol.CloseStatus.AbnormalClosure, "keep-alive timeout: the peer stopped answering");
            return;
        }
        if (now - lastReceived < (long)_options.KeepAliveInterval.TotalMilliseconds)
            return;
        Volatile.Write(ref _pingSentTicks, now);
        _ = SendKeepAlivePingAsync();
    }

    private async Task SendKeepAlivePingAsync()
    {
        try
        {
            await PingAsync().ConfigureAwait(false);
        }
        catch (WebSocketClosedException)
        {
        }
    }

    // When the application is not receiving (and holds no payload of ours), read on its behalf so that pings are answered and
    // pongs and the peer's close are seen. Data messages found on the way are kept, in order,
    // for the next ReceiveAsync; with two kept, reading stops until the application catches up.
    private void StartReadAhead()
    {
        if (!_receiveLock.TryEnter())
            return; // a receive is running
        // Not while the application may still be using a payload in the reader's buffer, nor with no room to keep more.
        if (_payloadLent || (_aheadInReader && _aheadCopy is not null))
        {
            _receiveLock.Exit();
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                if (_aheadInReader)
                {
                    // Free the reader's buffer for more frames by copying the kept message out.
                    var payload = _reader.Payload;
                    var copy = ArrayPool<byte>.Shared.Rent(Math.Max(1, payload.Length));
                    payload.CopyTo(copy);
                    _aheadCopyLength = payload.Length;
                    _aheadCopyType = (MessageType)_reader.MessageType;
                    _aheadCopyCompressed = (_reader.MessageRsv & Protocol.FrameHeader.Rsv1) != 0;
                    _aheadInReader = false;
                    Volatile.Write(ref _aheadCopy, copy); // published last: ReceiveAsync may take it without the lock
                }
                var message = await ReceiveCoreAsync(ReceiveMode.ReadAhead, releaseLock: false, CancellationToken.None).ConfigureAwait(false);
                _aheadInReader = !message.IsClose;
            }
            catch (Exception e) when (e is WebSocketClosedException or ObjectDisposedException)
            {
            }
            finally
            {
                _receiveLock.Exit();
            }
        });
    }
}

/// <summary>
/// One timer for all connections that share a check period, instead of a timer per connection:
/// an idle server's memory per connection counts.
/// </summary>
internal static class KeepAliveScheduler
{
    private sealed class Ticker
    {
        public readonly System.Collections.Concurrent.ConcurrentDictionary<WebSocketConnection, byte> Connections = new();
        public Timer? Timer;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<long, Ticker> Tickers = new();
    /// <summary>Starts checking a connection; the returned token stops it (<see cref="Remove"/>).</summary>
    public static object Add(WebSocketConnection connection, WebSocketOptions options)
    {
        // Check a few times per interval (or timeout, if shorter), at most every 10 ms.
        long period = Math.Max(10, (long)Math.Min(options.KeepAliveInterval.TotalMilliseconds, options.KeepAliveTimeout.TotalMilliseconds) / 4);
        var ticker = Tickers.GetOrAdd(period, static p =>
        {
            var t = new Ticker();
            t.Timer = new Timer(static state =>
            {
                foreach (var c in ((Ticker)state!).Connections.Keys)
                    c.OnKeepAliveTick();
            }, t, p, p);
            return t;
        });
        ticker.Connections.TryAdd(connection, 0);
        return ticker;
    }

    public static void Remove(WebSocketConnection connection, object? token)
    {
        if (token is Ticker ticker)
            ticker.Connections.TryRemove(connection, out _);
    }
}

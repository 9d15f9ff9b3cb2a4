using Duplex.Protocol;

namespace Duplex;

public sealed partial class WebSocketConnection
{
    // Runs on a timer: pings a quiet peer and drops one that stays silent past the timeout.
    private void OnKeepAliveTick()
    {
        if (_terminated || _closeSent)
        {
            _keepAliveTimer?.Dispose();
            return;
        }
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
        StartReadAhead();
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

    // If the application is not receiving, read on its behalf so that the pong (or the peer's
    // close) is seen. A data message found on the way is kept for the next ReceiveAsync.
    private void StartReadAhead()
    {
        if (_pendingMessage || !_receiveLock.Wait(0))
            return;
        _ = Task.Run(async () =>
        {
            try
            {
                var message = await ReceiveCoreAsync(discardMessages: false, CancellationToken.None).ConfigureAwait(false);
                _pendingMessage = !message.IsClose;
            }
            catch (Exception e) when (e is WebSocketClosedException or ObjectDisposedException)
            {
            }
            finally
            {
                _receiveLock.Release();
            }
        });
    }
}

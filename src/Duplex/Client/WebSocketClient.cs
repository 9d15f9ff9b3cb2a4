using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;
using Duplex.Transport;

namespace Duplex;

/// <summary>Opens client connections: DNS, TCP, TLS for wss://, and the opening handshake.</summary>
public static class WebSocketClient
{
    /// <summary>
    /// Connects to a ws:// or wss:// URI (through the proxy that <see cref="WebSocketClientOptions.Proxy"/>
    /// or the environment names, if any) and completes the handshake.
    /// </summary>
    /// <exception cref="WebSocketHandshakeException">The server refused the upgrade or answered something else.</exception>
    /// <exception cref="SocketException">The host (or the proxy) could not be reached.</exception>
    /// <exception cref="TimeoutException">The whole connect took longer than <see cref="WebSocketClientOptions.ConnectTimeout"/>.</exception>
    public static async Task<WebSocketConnection> ConnectAsync(Uri uri, WebSocketClientOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        options ??= new WebSocketClientOptions();
        if (!uri.IsAbsoluteUri || uri.Scheme is not ("ws" or "wss" or "http" or "https"))
            throw new ArgumentException($"'{uri}' is not a ws:// or wss:// URI.", nameof(uri));
        if (!string.IsNullOrEmpty(uri.Fragment))
            throw new ArgumentException("A WebSocket URI has no fragment (#...).", nameof(uri));

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        Stream? stream = null;
        try
        {
            var proxy = ProxyTunnel.Choose(uri, options);
            var socket = await ConnectSocketAsync(proxy ?? uri, timeout.Token).ConfigureAwait(false);
            var tcp = socket;
            // On the event loop where the server runs on it: reads complete on the loop thread.
            stream = options.UseEventLoop && EventLoop.IsSupported
                ? EventLoop.Attach(socket)
                : new NetworkStream(socket, ownsSocket: true);
            if (proxy is not null)
                await ProxyTunnel.OpenAsync(stream, uri, proxy, options.Proxy ?? System.Net.Http.HttpClient.DefaultProxy, options.HeadLimits,
                    timeout.Token).ConfigureAwait(false);
            if (ClientHandshake.IsSecure(uri))
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = tls;
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = uri.IdnHost,
                    ClientCertificates = options.ClientCertificates,
                    RemoteCertificateValidationCallback = Client.CertificateTrust.CallbackFor(options),
                }, timeout.Token).ConfigureAwait(false);
            }
            var connection = await HandshakeAsync(stream, tcp, uri, options, timeout.Token).ConfigureAwait(false);
            stream = null;
            return connection;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"Connecting to {uri} took longer than {options.ConnectTimeout.TotalSeconds:0.#} s.");
        }
        catch (AuthenticationException e)
        {
            throw new WebSocketHandshakeException($"TLS handshake with {uri.Host} failed: {e.Message}", null, e);
        }
        finally
        {
            if (stream is not null)
                await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task<Socket> ConnectSocketAsync(Uri uri, CancellationToken cancellationToken)
    {
        IPAddress[] addresses = IPAddress.TryParse(uri.DnsSafeHost, out var literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(uri.DnsSafeHost, cancellationToken).ConfigureAwait(false);
        if (addresses.Length == 0)
            throw new SocketException((int)SocketError.HostNotFound);
        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, uri.Port), cancellationToken).ConfigureAwait(false);
                return socket;
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw last!;
    }

    private static async Task<WebSocketConnection> HandshakeAsync(Stream stream, Socket socket, Uri uri, WebSocketClientOptions options,
        CancellationToken cancellationToken)
    {
        string key = Handshake.CreateKey();
        var protocols = options.SubProtocols.ToList();
        foreach (var protocol in protocols)
        {
            if (!HttpHeadParser.IsToken(protocol))
                throw new ArgumentException($"'{protocol}' is not a valid subprotocol name.", nameof(options));
        }
        var compression = options.Compression is not null && ZLib.IsAvailable ? options.Compression : null;
        compression?.Validate();
        string? offer = compression is null ? null : DeflateNegotiation.BuildOffer(compression.Limits);
        byte[] request = ClientHandshake.BuildRequest(uri, key, options.Origin, protocols, offer, options.Headers);
        await stream.WriteAsync(request, cancellationToken).ConfigureAwait(false);

        using var reader = new HttpHeadReader(options.HeadLimits);
        while (true)
        {
            {
                int read = await stream.ReadAsync(reader.GetMemory(), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                    throw new WebSocketHandshakeException("The server closed the connection during the handshake.");
                reader.Advance(read);
                var status = reader.TryReadResponse(out var head, out var error);
                if (status == OperationStatus.NeedMoreData)
                    continue;
                if (status != OperationStatus.Done)
                    throw new WebSocketHandshakeException($"The server's response is not valid HTTP: {error.Message}.");
                string[] offered = compression is null ? [] : [DeflateNegotiation.Name];
                if (!ClientHandshake.TryValidateResponse(head!, key, protocols, offered, out var response, out string? problem))
                    throw new WebSocketHandshakeException($"WebSocket handshake with {uri} failed: {problem}.", head!.StatusCode);
                DeflateParameters? deflate = null;
                if (response!.Extensions.Count > 1)
                    throw new WebSocketHandshakeException($"WebSocket handshake with {uri} failed: the server accepted permessage-deflate more than once.");
                if (response.Extensions.Count == 1 && !DeflateNegotiation.TryReadResponse(response.Extensions[0], compression!.Limits, out deflate, out problem))
                    throw new WebSocketHandshakeException($"WebSocket handshake with {uri} failed: {problem}.");
                return new WebSocketConnection(Transport.Transport.For(stream, socket), Role.Client, options, response.SubProtocol,
                    reader.Leftover, deflate, compression);
            }
        }
    }
}

using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Duplex.Protocol;
using Duplex.Transport;

namespace Duplex.Cli.Bench;

/// <summary>
/// The load generator's own connection: a raw socket that does the opening handshake and then
/// carries pre-built frames, so that the generator costs as little as possible per message.
/// Works against any WebSocket server (ws:// only: TLS would measure the TLS stack).
/// </summary>
internal static class BenchSocket
{
    public static async Task<IPEndPoint> ResolveAsync(Uri uri, CancellationToken cancellationToken)
    {
        if (uri.Scheme != "ws")
            throw new UsageException("bench measures plain ws:// servers");
        var addresses = IPAddress.TryParse(uri.DnsSafeHost, out var literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(uri.DnsSafeHost, cancellationToken);
        return new IPEndPoint(addresses[0], uri.Port);
    }

    /// <summary>
    /// Connects and upgrades; returns a stream over the socket and any bytes read past the 101.
    /// On Linux x86-64 the stream is on Duplex's event loop, so the generator's reads complete
    /// on the loop thread with no hop to the thread pool.
    /// </summary>
    public static async Task<(Stream Stream, byte[] Leftover)> ConnectAsync(IPEndPoint endPoint, Uri uri, CancellationToken cancellationToken,
        bool offerCompression = false)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        try
        {
            // A blocking connect (instant on loopback) keeps the socket away from .NET's own epoll engine.
            socket.Connect(endPoint);
            stream = EventLoop.IsSupported ? EventLoop.Attach(socket) : new NetworkStream(socket, ownsSocket: true);
            string key = Handshake.CreateKey();
            string? offer = offerCompression ? "permessage-deflate; client_max_window_bits" : null;
            await stream.WriteAsync(ClientHandshake.BuildRequest(uri, key, null, [], offer, null), cancellationToken);
            var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
            try
            {
                int filled = 0;
                while (true)
                {
                    int read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
                    if (read == 0)
                        throw new IOException("the server closed the connection during the handshake");
                    filled += read;
                    var status = HttpHeadParser.TryParseResponse(buffer.AsSpan(0, filled), HttpHeadLimits.Default, out var head, out int consumed, out var error);
                    if (status == OperationStatus.NeedMoreData)
                        continue;
                    if (status != OperationStatus.Done)
                        throw new IOException("bad handshake response: " + error.Message);
                    if (!ClientHandshake.TryValidateResponse(head!, key, [], offerCompression ? ["permessage-deflate"] : [], out var response, out string? problem))
                        throw new WebSocketHandshakeException(problem!, head!.StatusCode);
                    if (offerCompression && response!.Extensions.Count == 0)
                        throw new WebSocketHandshakeException("the server did not accept permessage-deflate");
                    return (stream, buffer.AsSpan(consumed, filled - consumed).ToArray());
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        catch
        {
            if (stream is not null)
                await stream.DisposeAsync();
            else
                socket.Dispose();
            throw;
        }
    }

    /// <summary>Closes with a reset: no TIME_WAIT piles up between runs.</summary>
    public static void Reset(Stream stream)
    {
        var socket = stream switch
        {
            EventLoopStream loop => loop.Socket,
            NetworkStream network => network.Socket,
            _ => null,
        };
        try
        {
            socket?.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Linger, new LingerOption(true, 0));
        }
        catch (SocketException)
        {
        }
        stream.Dispose();
    }

    /// <summary>A compressed client text frame (RSV1), for connections that agreed on permessage-deflate.</summary>
    public static byte[] BuildCompressedFrame(string text)
    {
        using var deflater = new Duplex.Protocol.Deflate.Deflater(9, contextTakeover: false);
        var (buffer, length) = deflater.Compress(System.Text.Encoding.UTF8.GetBytes(text));
        var frame = new byte[FrameWriter.GetFrameLength(length, masked: true)];
        FrameWriter.WriteFrame(frame, Opcode.Text, true, FrameHeader.Rsv1, buffer.AsSpan(0, length), 0x5A3C_9E17u);
        ArrayPool<byte>.Shared.Return(buffer);
        return frame;
    }

    /// <summary>A client frame (masked with a fixed key: the server unmasks it the same way).</summary>
    public static byte[] BuildFrame(Opcode opcode, int size)
    {
        var payload = new byte[size];
        for (int i = 0; i < size; i++)
            payload[i] = (byte)('a' + i % 26); // valid UTF-8 for text
        var frame = new byte[FrameWriter.GetFrameLength(size, masked: true)];
        FrameWriter.WriteFrame(frame, opcode, true, 0, payload, 0x5A3C_9E17u);
        return frame;
    }
}

/// <summary>
/// Counts whole messages in a server's stream of frames without keeping their payloads:
/// headers are parsed, payloads skipped, even across reads.
/// </summary>
internal struct FrameCounter
{
    private readonly byte[] _header;
    private int _headerFilled;
    private long _skip;
    private bool _fin;
    private bool _control;

    public FrameCounter()
    {
        _header = new byte[FrameHeader.MaxLength];
    }

    /// <summary>Feeds received bytes; returns how many data messages they completed. Close frames count as -1 (end).</summary>
    public int Feed(ReadOnlySpan<byte> data, out bool closed)
    {
        closed = false;
        int messages = 0;
        while (!data.IsEmpty)
        {
            if (_skip > 0)
            {
                int n = (int)Math.Min(_skip, data.Length);
                data = data[n..];
                _skip -= n;
                if (_skip == 0 && _fin && !_control)
                    messages++;
                continue;
            }
            int take = Math.Min(FrameHeader.MaxLength - _headerFilled, data.Length);
            data[..take].CopyTo(_header.AsSpan(_headerFilled));
            int available = _headerFilled + take;
            var status = FrameHeader.TryRead(_header.AsSpan(0, available), out var header, out int headerLength);
            if (status == OperationStatus.NeedMoreData)
            {
                _headerFilled = available;
                data = data[take..];
                continue;
            }
            if (status != OperationStatus.Done)
                throw new InvalidDataException("bad frame from the server");
            // Give back the bytes of the header buffer that belong to the payload.
            int used = headerLength - _headerFilled;
            data = data[used..];
            _headerFilled = 0;
            _fin = header.Fin;
            _control = ((byte)header.Opcode & 0x8) != 0;
            if (header.Opcode == Opcode.Close)
                closed = true;
            _skip = header.PayloadLength;
            if (_skip == 0 && _fin && !_control)
                messages++;
        }
        return messages;
    }
}

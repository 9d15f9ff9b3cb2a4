using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Duplex.Cli.Bench;

/// <summary>
/// The echo and handshake generators' connection: a bare socket that upgrades, then writes pre-built frames in
/// batches and counts the echoes in what it reads without decoding payloads. A generator must
/// cost far less per message than the server it measures, or it measures itself: a full
/// WebSocket client costs about what the server does. Used for the echo and handshake loads; it needs
/// nothing of Duplex beyond the public API, so it works against any server.
/// </summary>
internal sealed class RawConnection : IAsyncDisposable
{
    private readonly Socket _socket;

    private RawConnection(Socket socket, Stream stream, byte[] leftover)
    {
        _socket = socket;
        Stream = stream;
        Leftover = leftover;
    }

    public Stream Stream { get; }

    /// <summary>Bytes read past the 101 (the start of the first echoes).</summary>
    public byte[] Leftover { get; }

    public static async Task<RawConnection> OpenAsync(Uri uri, CancellationToken stop)
    {
        var addresses = IPAddress.TryParse(uri.DnsSafeHost, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(uri.DnsSafeHost, stop);
        var socket = new Socket(addresses[0].AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        try
        {
            await socket.ConnectAsync(new IPEndPoint(addresses[0], uri.Port), stop);
            stream = new NetworkStream(socket, ownsSocket: false);
            if (uri.Scheme == "wss")
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = uri.IdnHost,
                    RemoteCertificateValidationCallback = BenchClient.AcceptAnyCertificate ? static (_, _, _, _) => true : null,
                }, stop);
                stream = tls;
            }
            string key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"GET {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"), stop);
            var head = new byte[16 * 1024];
            int filled = 0, end;
            while ((end = head.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
            {
                if (filled == head.Length)
                    throw new IOException("the server's answer to the upgrade is too long");
                int read = await stream.ReadAsync(head.AsMemory(filled), stop);
                if (read == 0)
                    throw new IOException("the server closed the connection during the handshake");
                filled += read;
            }
            string answer = Encoding.Latin1.GetString(head, 0, end);
            string accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
            if (!answer.StartsWith("HTTP/1.1 101", StringComparison.Ordinal) || !answer.Contains(accept, StringComparison.Ordinal))
                throw new WebSocketHandshakeException($"the server refused the upgrade: {answer.Split("\r\n")[0]}");
            return new RawConnection(socket, stream, head[(end + 4)..filled]);
        }
        catch
        {
            if (stream is not null)
                await stream.DisposeAsync();
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A masked client frame of <paramref name="size"/> bytes (valid UTF-8 for text), with a fixed key: each copy is identical.</summary>
    public static byte[] BuildFrame(bool text, int size)
    {
        var payload = new byte[size];
        for (int i = 0; i < size; i++)
            payload[i] = (byte)('a' + i % 26);
        return BuildFrame(payload, (byte)(text ? 1 : 2));
    }

    /// <summary>A masked client frame around <paramref name="payload"/> (a fixed key), for messages and pongs.</summary>
    public static byte[] BuildFrame(ReadOnlySpan<byte> payload, byte opcode)
    {
        int lengthBytes = payload.Length < 126 ? 0 : payload.Length <= ushort.MaxValue ? 2 : 8;
        var frame = new byte[2 + lengthBytes + 4 + payload.Length];
        frame[0] = (byte)(0x80 | opcode);
        frame[1] = (byte)(0x80 | (lengthBytes == 0 ? payload.Length : lengthBytes == 2 ? 126 : 127));
        if (lengthBytes == 2)
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
        else if (lengthBytes == 8)
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
        ReadOnlySpan<byte> mask = [0x5A, 0x3C, 0x9E, 0x17];
        int at = 2 + lengthBytes;
        mask.CopyTo(frame.AsSpan(at));
        for (int i = 0; i < payload.Length; i++)
            frame[at + 4 + i] = (byte)(payload[i] ^ mask[i % 4]);
        return frame;
    }

    /// <summary>A close frame with 1000, masked with a zero key (the payload is the code as is).</summary>
    public static ReadOnlyMemory<byte> CloseFrame { get; } = new byte[] { 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8 };

    /// <summary>Lets go of the socket at once (for a connection whose own reader saw the close).</summary>
    public void Drop()
    {
        Stream.Dispose();
        _socket.Dispose();
    }

    /// <summary>Ends the run: a close frame (1000), the server's answer and FIN, then the socket.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await Stream.WriteAsync(CloseFrame);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var scratch = new byte[64 * 1024];
            while (await Stream.ReadAsync(scratch, timeout.Token) > 0)
            {
            }
        }
        catch (Exception e) when (BenchClient.IsFailure(e) || e is OperationCanceledException)
        {
        }
        await Stream.DisposeAsync();
        _socket.Dispose();
    }
}

/// <summary>
/// Counts whole data messages in a server's stream of frames without keeping their payloads:
/// headers are read, payloads skipped, even across reads.
/// </summary>
internal struct FrameCounter
{
    private byte[]? _header;
    private int _headerFilled;
    private long _skip;
    private bool _countsAsMessage;   // the frame being skipped ends a data message

    /// <summary>Feeds received bytes; returns how many data messages they completed. A close frame sets <paramref name="closed"/>.</summary>
    public int Feed(ReadOnlySpan<byte> data, out bool closed)
    {
        _header ??= new byte[14];
        closed = false;
        int messages = 0;
        while (!data.IsEmpty)
        {
            if (_skip > 0)
            {
                int n = (int)Math.Min(_skip, data.Length);
                data = data[n..];
                _skip -= n;
                if (_skip == 0 && _countsAsMessage)
                    messages++;
                continue;
            }
            // Collect the header (2 to 10 bytes from the server: it does not mask).
            _header[_headerFilled++] = data[0];
            data = data[1..];
            if (_headerFilled < 2)
                continue;
            int length7 = _header[1] & 0x7F;
            int need = 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + ((_header[1] & 0x80) != 0 ? 4 : 0);
            if (_headerFilled < need)
                continue;
            long length = length7 == 126 ? BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(2))
                : length7 == 127 ? (long)BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(2)) : length7;
            bool fin = (_header[0] & 0x80) != 0;
            int opcode = _header[0] & 0x0F;
            if (opcode == 8)
                closed = true;
            _countsAsMessage = fin && opcode < 8;
            _headerFilled = 0;
            _skip = length;
            if (_skip == 0 && _countsAsMessage)
                messages++;
        }
        return messages;
    }
}

using System.Net.Sockets;
using System.Text;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;
using Duplex.Testing;

namespace Duplex.Conformance.Tests;

/// <summary>A case failed: what was expected and what happened.</summary>
public sealed class ConformanceException(string message) : Exception(message);

/// <summary>
/// The test side of a conformance case, at the raw-socket level, like Autobahn's fuzzing peer:
/// it sends any bytes, valid or not, in any chops, and checks exactly what comes back. As a client
/// it masks its frames (testing a server); as a server it does not (testing a client).
/// </summary>
public sealed class Fuzzer
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly Stream _stream;
    private readonly Socket _socket;
    private readonly bool _isClient;
    private readonly Queue<RawFrame> _unread = new();
    private Deflater? _deflater;
    private Inflater? _inflater;
    private bool _inCompressedMessage;

    public Fuzzer(Stream stream, Socket socket, bool isClient)
    {
        _stream = stream;
        _socket = socket;
        _isClient = isClient;
    }

    /// <summary>
    /// Turns permessage-deflate on with what the handshake agreed: the fuzzer then compresses
    /// what it sends with <see cref="SendCompressedAsync"/> and inflates what comes back.
    /// </summary>
    public void UseCompression(DeflateParameters parameters)
    {
        var me = _isClient ? Role.Client : Role.Server;
        var (sendBits, sendTakeover) = parameters.Sender(me);
        var (receiveBits, receiveTakeover) = parameters.Receiver(me);
        _deflater = new Deflater(sendBits, sendTakeover);
        _inflater = new Inflater(receiveBits, receiveTakeover);
    }

    /// <summary>Sends one compressed message, split into frames of <paramref name="fragment"/> compressed bytes when given.</summary>
    public async Task SendCompressedAsync(Opcode opcode, byte[] payload, int fragment = 0)
    {
        var (buffer, length) = _deflater!.Compress(payload);
        var compressed = buffer.AsSpan(0, length).ToArray();
        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        if (fragment <= 0 || compressed.Length <= fragment)
        {
            await SendRawAsync(Frame(opcode, compressed, rsv: FrameHeader.Rsv1));
            return;
        }
        var frames = new MemoryStream();
        for (int at = 0; at < compressed.Length; at += fragment)
        {
            bool first = at == 0, last = at + fragment >= compressed.Length;
            frames.Write(Frame(first ? opcode : Opcode.Continuation, compressed.AsSpan(at, Math.Min(fragment, compressed.Length - at)),
                fin: last, rsv: first ? FrameHeader.Rsv1 : (byte)0));
        }
        await SendRawAsync(frames.ToArray());
    }

    /// <summary>Which side of the implementation is under test.</summary>
    public string TestedRole => _isClient ? "server" : "client";

    // ------------------------------------------------------------ sending

    public byte[] Frame(Opcode opcode, ReadOnlySpan<byte> payload, bool fin = true, byte rsv = 0) =>
        Frames.Build(opcode, payload, fin, rsv, _isClient ? Frames.TestMask : null);

    /// <summary>Sends a frame; with <paramref name="chop"/>, in writes of that many bytes.</summary>
    public Task SendAsync(Opcode opcode, ReadOnlySpan<byte> payload, bool fin = true, byte rsv = 0, int chop = 0) =>
        SendRawAsync(Frame(opcode, payload, fin, rsv), chop);

    public Task SendTextAsync(string text, bool fin = true, int chop = 0) => SendAsync(Opcode.Text, Encoding.UTF8.GetBytes(text), fin, 0, chop);

    public async Task SendRawAsync(byte[] bytes, int chop = 0)
    {
        if (chop <= 0)
        {
            await _stream.WriteAsync(bytes);
            return;
        }
        for (int i = 0; i < bytes.Length; i += chop)
        {
            await _stream.WriteAsync(bytes.AsMemory(i, Math.Min(chop, bytes.Length - i)));
            await _stream.FlushAsync();
        }
    }

    public Task SendCloseAsync(int? code = null, string reason = "") =>
        SendAsync(Opcode.Close, code is int c ? Frames.ClosePayload(c, reason) : []);

    // ------------------------------------------------------------ receiving

    private async Task<RawFrame?> NextFrameAsync(TimeSpan? timeout = null)
    {
        if (_unread.TryDequeue(out var frame))
            return frame;
        using var cts = new CancellationTokenSource(timeout ?? Patience);
        try
        {
            frame = await RawFrame.ReadAsync(_stream, cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new ConformanceException($"nothing arrived within {(timeout ?? Patience).TotalSeconds:0.#} s");
        }
        catch (IOException)
        {
            return null; // reset counts as the connection ending
        }
        if (frame is not null && frame.Masked != !_isClient)
            throw new ConformanceException($"the {TestedRole} sent a {(frame.Masked ? "masked" : "unmasked")} frame");
        if (frame is not null && frame.Rsv != 0)
        {
            // With permessage-deflate, RSV1 may mark the first frame of a data message, nothing else.
            bool allowed = _inflater is not null && frame.Rsv == FrameHeader.Rsv1
                && frame.Opcode is Opcode.Text or Opcode.Binary && !_inCompressedMessage;
            if (!allowed)
                throw new ConformanceException($"the {TestedRole} set reserved bits ({frame.Rsv:X2}) on a {frame.Opcode} frame");
        }
        return frame;
    }

    /// <summary>Expects the next message to be this one (assembled from its frames).</summary>
    public async Task ExpectMessageAsync(Opcode type, ReadOnlyMemory<byte> payload, TimeSpan? timeout = null)
    {
        var first = await NextFrameAsync(timeout) ?? throw new ConformanceException($"connection ended; expected a {type} message");
        if (first.Opcode != type)
            throw new ConformanceException($"expected a {type} message, got {first}{Describe(first)}");
        using var assembled = new MemoryStream();
        assembled.Write(first.Payload);
        var frame = first;
        bool compressed = first.Rsv == FrameHeader.Rsv1;
        _inCompressedMessage = compressed;
        while (!frame.Fin)
        {
            frame = await NextFrameAsync(timeout) ?? throw new ConformanceException("connection ended inside a message");
            if (frame.Opcode != Opcode.Continuation)
                throw new ConformanceException($"expected a continuation frame, got {frame}");
            assembled.Write(frame.Payload);
        }
        _inCompressedMessage = false;
        if (compressed)
        {
            if (_inflater!.Decompress(assembled.ToArray(), 64 << 20, out var inflated, out int inflatedLength) != InflateStatus.Ok)
                throw new ConformanceException($"the {TestedRole} sent compressed data that does not inflate");
            assembled.SetLength(0);
            assembled.Write(inflated, 0, inflatedLength);
            System.Buffers.ArrayPool<byte>.Shared.Return(inflated);
        }
        if (!assembled.ToArray().AsSpan().SequenceEqual(payload.Span))
            throw new ConformanceException($"the echoed {type} message differs ({assembled.Length} bytes, expected {payload.Length})");
    }

    public Task ExpectTextAsync(string text) => ExpectMessageAsync(Opcode.Text, Encoding.UTF8.GetBytes(text));

    public async Task ExpectPongAsync(ReadOnlyMemory<byte> payload)
    {
        var frame = await NextFrameAsync() ?? throw new ConformanceException("connection ended; expected a pong");
        if (frame.Opcode != Opcode.Pong || !frame.Payload.AsSpan().SequenceEqual(payload.Span))
            throw new ConformanceException($"expected a pong with {payload.Length} bytes, got {frame}{Describe(frame)}");
    }

    /// <summary>Expects nothing to arrive for a while (no echo, no pong).</summary>
    public async Task ExpectSilenceAsync(int milliseconds = 100)
    {
        try
        {
            var frame = await NextFrameAsync(TimeSpan.FromMilliseconds(milliseconds));
            if (frame is not null)
                throw new ConformanceException($"expected nothing, got {frame}{Describe(frame)}");
        }
        catch (ConformanceException e) when (e.Message.StartsWith("nothing arrived", StringComparison.Ordinal))
        {
        }
    }

    /// <summary>
    /// Expects the implementation to close (or fail the connection) with one of the codes
    /// (1005 stands for a close frame without a status), answers with a close as a well-behaved
    /// peer does, and expects TCP to end.
    /// </summary>
    public async Task ExpectCloseAsync(params int[] codes)
    {
        var frame = await NextFrameAsync() ?? throw new ConformanceException($"connection dropped without a close frame; expected close {string.Join("/", codes)}");
        if (frame.Opcode != Opcode.Close)
            throw new ConformanceException($"expected close {string.Join("/", codes)}, got {frame}{Describe(frame)}");
        if (!codes.Contains(frame.CloseCode))
            throw new ConformanceException($"expected close {string.Join("/", codes)}, got close {frame.CloseCode} '{frame.CloseReason}'");
        try
        {
            await SendCloseAsync(frame.Payload.Length >= 2 ? frame.CloseCode : null);
        }
        catch (IOException)
        {
            // It may already have dropped TCP after failing the connection: that is allowed.
        }
        await ExpectEndAsync();
    }

    /// <summary>Sends close 1000 and expects it echoed, then the end of TCP.</summary>
    public async Task CloseNormallyAsync()
    {
        await SendCloseAsync(1000);
        var frame = await NextFrameAsync() ?? throw new ConformanceException("connection dropped; expected a close answer");
        if (frame.Opcode != Opcode.Close || frame.CloseCode != 1000)
            throw new ConformanceException($"expected close 1000 in answer, got {frame}{Describe(frame)}");
        await ExpectEndAsync();
    }

    /// <summary>
    /// Expects TCP to end. A server must end it itself (§7.1.1); when testing a client, the
    /// fuzzer, being the server, ends its side first and the client must follow.
    /// </summary>
    public async Task ExpectEndAsync()
    {
        if (!_isClient)
        {
            try
            {
                _socket.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
            }
        }
        while (true)
        {
            var frame = await NextFrameAsync();
            if (frame is null)
                return;
            throw new ConformanceException($"expected the end of the connection, got {frame}{Describe(frame)}");
        }
    }

    private static string Describe(RawFrame frame) => frame.Opcode switch
    {
        Opcode.Close => $" (close {frame.CloseCode} '{frame.CloseReason}')",
        Opcode.Text when frame.Payload.Length <= 40 => $" ('{frame.Text}')",
        _ => "",
    };
}

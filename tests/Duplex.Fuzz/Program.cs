using System.Text;
using Duplex;
using Duplex.Hub;
using Duplex.Protocol;
using Duplex.Protocol.Deflate;
using SharpFuzz;

// One process per target; AFL++ feeds it inputs. Any exception escaping a target is a crash:
// the code under test must turn every bad input into a value (an error, a close code), never throw.
if (args.Length != 1 || !Targets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"usage: Duplex.Fuzz TARGET   (one of: {string.Join(", ", Targets.All.Keys)})");
    return 64;
}
if (Environment.GetEnvironmentVariable("__AFL_SHM_ID") is null)
{
    // Outside AFL: run the files given on stdin's lines once each (to replay a crash or the corpus).
    string? path;
    while ((path = Console.ReadLine()) is not null)
        target(File.ReadAllBytes(path));
    return 0;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    target(copy.ToArray());
});
return 0;

internal static class Targets
{
    public static readonly Dictionary<string, Action<byte[]>> All = new()
    {
        ["frames-server"] = input => Frames(input, Role.Server, compressed: false),
        ["frames-client"] = input => Frames(input, Role.Client, compressed: false),
        ["frames-server-deflate"] = input => Frames(input, Role.Server, compressed: true),
        ["frames-client-deflate"] = input => Frames(input, Role.Client, compressed: true),
        ["http-request"] = HttpRequest,
        ["http-response"] = HttpResponse,
        ["deflate-negotiation"] = DeflateOffer,
        ["hub-request"] = HubRequest,
        ["jwt"] = Jwt,
    };

    // The protocol object receiving the input in pieces (split at the first byte's value), both modes.
    private static void Frames(byte[] input, Role role, bool compressed)
    {
        var deflate = compressed ? new DeflateParameters(false, false, 15, 15) : null;
        var protocol = new WebSocketProtocol(new ProtocolSettings(role, 1 << 20, TimeSpan.Zero, TimeSpan.Zero,
            TimeSpan.FromSeconds(5), TimeProvider.System, TimeSpan.FromSeconds(60), deflate, new DeflateSettings(0, 6, 8)));
        int piece = input.Length == 0 ? 1 : 1 + input[0] % 64;
        for (int at = 0; at < input.Length; at += piece)
        {
            protocol.Received(input.AsSpan(at, Math.Min(piece, input.Length - at)));
            while (true)
            {
                var ev = protocol.Receive(input.Length % 2 == 0 ? ReceiveMode.Deliver : ReceiveMode.ReadAhead);
                if (ev is ProtocolEvent.NeedMoreData or ProtocolEvent.Failed or ProtocolEvent.Ended)
                    break;
                if (ev == ProtocolEvent.Message && input.Length % 2 != 0)
                    break; // held: reading ahead stops there
                protocol.WriteOwedFrames();
                protocol.OutputWritten();
            }
            if (protocol.ShouldEndTransport)
                break;
        }
        protocol.DisposeReceiver();
        protocol.DisposeSender();
    }

    private static void HttpRequest(byte[] input)
    {
        if (HttpHeadParser.TryParseRequest(input, HttpHeadLimits.Default, out var head, out _, out _) == System.Buffers.OperationStatus.Done)
        {
            _ = head!.Path;
            _ = head.Query;
            if (ServerHandshake.TryValidate(head, out var request, out _) && request!.Extensions.Count > 0)
                DeflateNegotiation.TryAccept(request.Extensions, PerMessageDeflateOptions.ForServer().Limits, out _, out _);
        }
    }

    private static void HttpResponse(byte[] input)
    {
        if (HttpHeadParser.TryParseResponse(input, HttpHeadLimits.Default, out var head, out _, out _) == System.Buffers.OperationStatus.Done)
            ClientHandshake.TryValidateResponse(head!, "dGhlIHNhbXBsZSBub25jZQ==", ["chat"], [DeflateNegotiation.Name], out _, out _);
    }

    private static void DeflateOffer(byte[] input)
    {
        string header = Encoding.Latin1.GetString(input);
        if (!Handshake.TryParseExtensions([header], out var offers))
            return;
        DeflateNegotiation.TryAccept(offers, new PerMessageDeflateOptions().Limits, out _, out _);
        if (offers.Count > 0)
            DeflateNegotiation.TryReadResponse(offers[0], new PerMessageDeflateOptions().Limits, out _, out _);
    }

    // Made on first use, inside the fuzzing loop: instrumented code may only run once SharpFuzz
    // has set up the coverage map (a static initializer would run it before).
    private static HubSession? s_session;

    private static void HubRequest(byte[] input)
    {
        s_session ??= new HubSession(new MessageHub(), WebSocketConnection.Create(Stream.Null, Role.Server,
            new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero }), "fuzz", new HubIdentity("fuzz", ["*"], ["*"]));
        s_session.HandleAsync(input, text: true).AsTask().GetAwaiter().GetResult();
    }

    private static readonly byte[] Key = Encoding.UTF8.GetBytes("a-secret-of-sixteen-or-more");

    private static void Jwt(byte[] input) =>
        JwtAuthenticator.Validate(Encoding.UTF8.GetString(input), Key, DateTimeOffset.UtcNow, new JwtValidation { Issuer = "i", Audience = "a" });
}

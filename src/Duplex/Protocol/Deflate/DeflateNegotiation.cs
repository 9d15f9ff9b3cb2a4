using System.Text;

namespace Duplex.Protocol.Deflate;

/// <summary>What both ends agreed to for permessage-deflate, in the RFC's terms.</summary>
public sealed record DeflateParameters(bool ServerNoContextTakeover, bool ClientNoContextTakeover, int ServerMaxWindowBits, int ClientMaxWindowBits)
{
    /// <summary>Window and takeover for the side that sends with this role.</summary>
    public (int WindowBits, bool Takeover) Sender(Role role) => role == Role.Server
        ? (ServerMaxWindowBits, !ServerNoContextTakeover)
        : (ClientMaxWindowBits, !ClientNoContextTakeover);

    /// <summary>Window and takeover of what the side with this role receives.</summary>
    public (int WindowBits, bool Takeover) Receiver(Role role) => Sender(role == Role.Server ? Role.Client : Role.Server);
}

/// <summary>Negotiation of permessage-deflate (RFC 7692 §5, §7.1), both roles, pure.</summary>
/// <summary>What one side allows in a permessage-deflate negotiation (from the application's options).</summary>
internal readonly record struct DeflateLimits(int ServerMaxWindowBits, int ClientMaxWindowBits, bool ServerContextTakeover, bool ClientContextTakeover);

internal static class DeflateNegotiation
{
    public const string Name = "permessage-deflate";
    private const string ServerNoContext = "server_no_context_takeover", ClientNoContext = "client_no_context_takeover";
    private const string ServerBits = "server_max_window_bits", ClientBits = "client_max_window_bits";

    private sealed record Offer(bool ServerNoContext, bool ClientNoContext, int? ServerBits, bool ClientBitsOffered, int? ClientBits);

    // One offer's parameters, or null when they break §7.1 (unknown, repeated, bad value).
    private static Offer? Read(ExtensionOffer offer)
    {
        bool serverNoContext = false, clientNoContext = false, clientBitsOffered = false;
        int? serverBits = null, clientBits = null;
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in offer.Parameters)
        {
            if (!seen.Add(key))
                return null;
            switch (key.ToLowerInvariant())
            {
                case ServerNoContext when value is null:
                    serverNoContext = true;
                    break;
                case ClientNoContext when value is null:
                    clientNoContext = true;
                    break;
                case ServerBits when TryBits(value, out int bits):
                    serverBits = bits;
                    break;
                case ClientBits when value is null:
                    clientBitsOffered = true;
                    break;
                case ClientBits when TryBits(value, out int bits):
                    clientBitsOffered = true;
                    clientBits = bits;
                    break;
                default:
                    return null;
            }
        }
        return new Offer(serverNoContext, clientNoContext, serverBits, clientBitsOffered, clientBits);
    }

    // §7.1.2: 1*DIGIT from 8 to 15, no leading zero.
    private static bool TryBits(string? value, out int bits)
    {
        bits = 0;
        return value is { Length: 1 or 2 } && value[0] != '0' && int.TryParse(value, out bits) && bits is >= 8 and <= 15;
    }

    /// <summary>
    /// The server's choice: the first permessage-deflate offer it can honour. Offers that break
    /// the rules, or ask for what zlib cannot do (an 8-bit server window), are declined.
    /// </summary>
    public static bool TryAccept(IEnumerable<ExtensionOffer> offers, DeflateLimits options,
        out DeflateParameters? parameters, out string? response)
    {
        parameters = null;
        response = null;
        foreach (var extension in offers)
        {
            if (!string.Equals(extension.Name, Name, StringComparison.OrdinalIgnoreCase) || Read(extension) is not { } offer)
                continue;
            int serverBits = Math.Min(options.ServerMaxWindowBits, offer.ServerBits ?? 15);
            if (serverBits < 9)
                continue;
            int clientBits = offer.ClientBitsOffered ? Math.Min(options.ClientMaxWindowBits, offer.ClientBits ?? 15) : 15;
            bool serverNoContext = offer.ServerNoContext || !options.ServerContextTakeover;
            bool clientNoContext = offer.ClientNoContext || !options.ClientContextTakeover;
            var text = new StringBuilder(Name);
            if (serverNoContext)
                text.Append("; ").Append(ServerNoContext);
            if (clientNoContext)
                text.Append("; ").Append(ClientNoContext);
            if (offer.ServerBits is not null || serverBits < 15)
                text.Append("; ").Append(ServerBits).Append('=').Append(serverBits);
            if (offer.ClientBitsOffered && (offer.ClientBits is not null || clientBits < 15))
                text.Append("; ").Append(ClientBits).Append('=').Append(clientBits);
            parameters = new DeflateParameters(serverNoContext, clientNoContext, serverBits, clientBits);
            response = text.ToString();
            return true;
        }
        return false;
    }

    /// <summary>The client's offer for its request header.</summary>
    public static string BuildOffer(DeflateLimits options)
    {
        var text = new StringBuilder(Name);
        if (!options.ServerContextTakeover)
            text.Append("; ").Append(ServerNoContext);
        if (!options.ClientContextTakeover)
            text.Append("; ").Append(ClientNoContext);
        if (options.ServerMaxWindowBits < 15)
            text.Append("; ").Append(ServerBits).Append('=').Append(options.ServerMaxWindowBits);
        text.Append("; ").Append(ClientBits);
        if (options.ClientMaxWindowBits < 15)
            text.Append('=').Append(options.ClientMaxWindowBits);
        return text.ToString();
    }

    /// <summary>
    /// The client's check of the server's answer (§7.1): only parameters it may send, each once,
    /// no window larger than the client allowed, none it cannot honour.
    /// </summary>
    public static bool TryReadResponse(ExtensionOffer response, DeflateLimits options,
        out DeflateParameters? parameters, out string? error)
    {
        parameters = null;
        if (Read(response) is not { } answer)
            return Fail("the server's permessage-deflate parameters are invalid", out error);
        if (answer.ClientBitsOffered && answer.ClientBits is null)
            return Fail("client_max_window_bits in a response needs a value", out error);
        int serverBits = answer.ServerBits ?? 15;
        if (serverBits > options.ServerMaxWindowBits)
            return Fail($"the server chose a {serverBits}-bit window, more than the {options.ServerMaxWindowBits} offered", out error);
        int clientBits = Math.Min(answer.ClientBits ?? 15, options.ClientMaxWindowBits);
        if (clientBits < 9)
            return Fail("the server asked for an 8-bit client window, which zlib cannot compress with", out error);
        if (options.ServerContextTakeover is false && !answer.ServerNoContext)
            return Fail("the server did not agree to server_no_context_takeover", out error);
        parameters = new DeflateParameters(answer.ServerNoContext, answer.ClientNoContext || !options.ClientContextTakeover, serverBits, clientBits);
        error = null;
        return true;
    }

    private static bool Fail(string message, out string? error)
    {
        error = message;
        return false;
    }
}

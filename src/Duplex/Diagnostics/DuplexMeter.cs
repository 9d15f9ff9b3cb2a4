using System.Diagnostics.Metrics;
using System.Reflection;
using Duplex.Protocol;

namespace Duplex.Diagnostics;

/// <summary>
/// Duplex's metrics, as a <see cref="System.Diagnostics.Metrics.Meter"/> named "Duplex" that
/// OpenTelemetry (<c>AddMeter("Duplex")</c>), <c>dotnet-counters</c> or a <see cref="MeterListener"/>
/// can collect. Nothing is measured while nobody listens.
/// </summary>
/// <remarks>
/// Instruments: <c>duplex.connections.opened</c>, <c>duplex.connections.active</c> and
/// <c>duplex.connections.closed</c> (tagged <c>duplex.role</c>, the closes also
/// <c>duplex.close.code</c>); <c>duplex.messages.received</c>, <c>duplex.messages.sent</c>,
/// <c>duplex.bytes.received</c> and <c>duplex.bytes.sent</c> (data messages and their payload
/// bytes, before compression); <c>duplex.handshake.failures</c> (tagged
/// <c>duplex.failure.reason</c>: the HTTP status answered, <c>tls</c> or <c>timeout</c>); and,
/// from Duplex.Hub, <c>duplex.hub.deliveries</c> and <c>duplex.hub.slow_consumer_closes</c>.
/// </remarks>
public static class DuplexMeter
{
    /// <summary>The meter's name: "Duplex".</summary>
    public const string Name = "Duplex";

    internal static readonly Meter Meter = new(Name,
        typeof(DuplexMeter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]);

    private static readonly Counter<long> Opened = Meter.CreateCounter<long>("duplex.connections.opened", "{connection}",
        "WebSocket connections opened (handshake done).");
    private static readonly UpDownCounter<long> Active = Meter.CreateUpDownCounter<long>("duplex.connections.active", "{connection}",
        "WebSocket connections open now.");
    private static readonly Counter<long> Closed = Meter.CreateCounter<long>("duplex.connections.closed", "{connection}",
        "WebSocket connections ended, by close code (1006: without a close handshake).");
    private static readonly Counter<long> MessagesIn = Meter.CreateCounter<long>("duplex.messages.received", "{message}",
        "Data messages received.");
    private static readonly Counter<long> MessagesOut = Meter.CreateCounter<long>("duplex.messages.sent", "{message}",
        "Data messages sent.");
    private static readonly Counter<long> BytesIn = Meter.CreateCounter<long>("duplex.bytes.received", "By",
        "Payload bytes of the data messages received (after decompression).");
    private static readonly Counter<long> BytesOut = Meter.CreateCounter<long>("duplex.bytes.sent", "By",
        "Payload bytes of the data messages sent (before compression).");
    private static readonly Counter<long> HandshakeFailures = Meter.CreateCounter<long>("duplex.handshake.failures", "{handshake}",
        "Opening handshakes that failed, by reason: the HTTP status answered, tls or timeout.");

    private static KeyValuePair<string, object?> RoleTag(Role role) => new("duplex.role", role == Role.Server ? "server" : "client");

    internal static void ConnectionOpened(Role role)
    {
        if (Opened.Enabled)
            Opened.Add(1, RoleTag(role));
        if (Active.Enabled)
            Active.Add(1, RoleTag(role));
    }

    internal static void ConnectionClosed(Role role, CloseStatus status)
    {
        if (Active.Enabled)
            Active.Add(-1, RoleTag(role));
        if (Closed.Enabled)
            Closed.Add(1, RoleTag(role), new KeyValuePair<string, object?>("duplex.close.code", (int)status));
    }

    // Per message: no tags, and nothing at all while nobody listens.
    internal static void MessageReceived(int bytes)
    {
        if (MessagesIn.Enabled)
        {
            MessagesIn.Add(1);
            BytesIn.Add(bytes);
        }
    }

    internal static void MessageSent(int bytes)
    {
        if (MessagesOut.Enabled)
        {
            MessagesOut.Add(1);
            BytesOut.Add(bytes);
        }
    }

    // A non-final piece of a streamed message: its bytes now, the message with its last piece.
    internal static void FragmentSent(int bytes)
    {
        if (BytesOut.Enabled)
            BytesOut.Add(bytes);
    }

    internal static void HandshakeFailed(string reason)
    {
        if (HandshakeFailures.Enabled)
            HandshakeFailures.Add(1, new KeyValuePair<string, object?>("duplex.failure.reason", reason));
    }
}

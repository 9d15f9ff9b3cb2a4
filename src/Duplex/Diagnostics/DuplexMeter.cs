using System.Diagnostics.Metrics;
using System.Reflection;
using Duplex.Protocol;

namespace Duplex.Diagnostics;

/// <summary>
/// Duplex's metrics, as a <see cref="System.Diagnostics.Metrics.Meter"/> named "Duplex" that
/// OpenTelemetry (<c>AddMeter("Duplex")</c>), <c>dotnet-counters</c> or a <see cref="MeterListener"/>
/// can collect. The per-message counts are kept in one cell per thread (a plain add, a few
/// nanoseconds) and summed when collected; everything else is measured only while someone listens.
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
    // The per-message instruments are observed, not pushed: a message costs a plain add into its
    // thread's own cell (see Traffic), and the sums are taken when a listener collects.
    private static readonly ObservableCounter<long> MessagesIn = Meter.CreateObservableCounter("duplex.messages.received",
        static () => Traffic.Sum(static c => c.MessagesIn), "{message}", "Data messages received.");
    private static readonly ObservableCounter<long> MessagesOut = Meter.CreateObservableCounter("duplex.messages.sent",
        static () => Traffic.Sum(static c => c.MessagesOut), "{message}", "Data messages sent.");
    private static readonly ObservableCounter<long> BytesIn = Meter.CreateObservableCounter("duplex.bytes.received",
        static () => Traffic.Sum(static c => c.BytesIn), "By", "Payload bytes of the data messages received (after decompression).");
    private static readonly ObservableCounter<long> BytesOut = Meter.CreateObservableCounter("duplex.bytes.sent",
        static () => Traffic.Sum(static c => c.BytesOut), "By", "Payload bytes of the data messages sent (before compression).");
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

    internal static void MessageReceived(int bytes)
    {
        var cell = Traffic.Mine();
        Traffic.Add(cell, ref cell.MessagesIn, 1);
        Traffic.Add(cell, ref cell.BytesIn, bytes);
    }

    internal static void MessageSent(int bytes)
    {
        var cell = Traffic.Mine();
        Traffic.Add(cell, ref cell.MessagesOut, 1);
        Traffic.Add(cell, ref cell.BytesOut, bytes);
    }

    // A non-final piece of a streamed message: its bytes now, the message with its last piece.
    internal static void FragmentSent(int bytes)
    {
        var cell = Traffic.Mine();
        Traffic.Add(cell, ref cell.BytesOut, bytes);
    }

    /// <summary>
    /// Message and byte counts in one cell per thread, so that counting takes no interlocked
    /// instruction. Invariant: a cell that is not <see cref="Cell.Shared"/> is written only by the
    /// thread that owns it (readers may see a count a moment late, never a torn one: 64-bit loads).
    /// Bound: at most <see cref="MaxCells"/> cells; threads beyond that (a pool that keeps making
    /// new ones) all count into the one shared cell, with interlocked adds.
    /// </summary>
    private static class Traffic
    {
        internal sealed class Cell(bool shared)
        {
            public readonly bool Shared = shared;
            public long MessagesIn, BytesIn, MessagesOut, BytesOut;
        }

        private const int MaxCells = 256;
        private static readonly Cell SharedCell = new(shared: true);
        private static readonly List<Cell> Cells = [SharedCell]; // guarded by itself
        [ThreadStatic] private static Cell? t_cell;

        public static Cell Mine() => t_cell ?? Register();

        public static void Add(Cell cell, ref long counter, long value)
        {
            if (cell.Shared)
                Interlocked.Add(ref counter, value);
            else
                counter += value;
        }

        private static Cell Register()
        {
            lock (Cells)
            {
                var cell = Cells.Count < MaxCells ? new Cell(shared: false) : SharedCell;
                if (!cell.Shared)
                    Cells.Add(cell);
                return t_cell = cell;
            }
        }

        public static long Sum(Func<Cell, long> field)
        {
            long sum = 0;
            lock (Cells)
                foreach (var cell in Cells)
                    sum += field(cell); // a plain 64-bit load: late at worst, never torn
            return sum;
        }
    }

    internal static void HandshakeFailed(string reason)
    {
        if (HandshakeFailures.Enabled)
            HandshakeFailures.Add(1, new KeyValuePair<string, object?>("duplex.failure.reason", reason));
    }
}

using System.Globalization;
using System.Text;
using Duplex.Server;

namespace Duplex.Hub;

public sealed partial class MessageHub
{
    /// <summary>The hub's and the server's counters in the Prometheus text format.</summary>
    public string FormatMetrics(WebSocketServer? server = null)
    {
        var text = new StringBuilder();
        void Metric(string name, string type, string help, long value)
        {
            text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            text.Append(name).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        if (server is not null)
            Metric("duplex_connections", "gauge", "Open WebSocket connections on the server.", server.ConnectionCount);
        Metric("duplex_hub_connections", "gauge", "Open hub connections.", Metrics.Connections);
        Metric("duplex_hub_channels", "gauge", "Channels with at least one member.", ChannelCount);
        Metric("duplex_hub_messages_in_total", "counter", "Requests received by the hub.", Metrics.MessagesIn);
        Metric("duplex_hub_bytes_in_total", "counter", "Bytes of requests received by the hub.", Metrics.BytesIn);
        Metric("duplex_hub_messages_out_total", "counter", "Channel messages delivered to subscribers.", Metrics.MessagesOut);
        Metric("duplex_hub_bytes_out_total", "counter", "Bytes of channel messages delivered to subscribers.", Metrics.BytesOut);
        Metric("duplex_hub_dropped_slow_consumers_total", "counter", "Connections closed with 1013 for falling behind.", Metrics.DroppedSlowConsumers);
        if (_engine is InMemoryHubEngine memory)
            Metric("duplex_hub_history_bytes", "gauge", "Bytes of channel history kept in memory.", memory.HistoryBytes);
        _engine.WriteMetrics(Metric);
        // The process, for dashboards and the soak test: what must stay flat under steady load.
        using (var process = System.Diagnostics.Process.GetCurrentProcess())
            Metric("process_resident_memory_bytes", "gauge", "Resident memory of the server process.", process.WorkingSet64);
        if (OpenFileDescriptors() is long fds)
            Metric("process_open_fds", "gauge", "Open file descriptors (sockets included).", fds);
        Metric("dotnet_gc_heap_bytes", "gauge", "Bytes in use on the managed heap.", GC.GetTotalMemory(false));
        return text.ToString();
    }

    private static long? OpenFileDescriptors()
    {
        try
        {
            return Directory.EnumerateFileSystemEntries("/proc/self/fd").LongCount();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // not Linux
        }
    }
}

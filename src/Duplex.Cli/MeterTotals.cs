using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Duplex.Diagnostics;

namespace Duplex.Cli;

/// <summary>
/// Sums what the "Duplex" meter measures, for `duplex serve`'s /metrics (Prometheus text):
/// duplex.messages.sent becomes duplex_messages_sent_total, its tags become labels. The
/// per-message instruments are observed counters, read when /metrics is asked for.
/// </summary>
internal sealed class MeterTotals : IDisposable
{
    private sealed class Totals(Instrument instrument)
    {
        public readonly Instrument Instrument = instrument;
        public long Untagged;
        public readonly ConcurrentDictionary<string, long> Tagged = new();
    }

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, Totals> _totals = new();

    public MeterTotals()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == DuplexMeter.Name)
                listener.EnableMeasurementEvents(instrument, _totals.GetOrAdd(instrument, i => new Totals(i)));
        };
        _listener.SetMeasurementEventCallback<long>(static (instrument, value, tags, state) =>
        {
            var totals = (Totals)state!;
            if (instrument.IsObservable)
            {
                // An observed counter reports its running total, not an increment.
                if (tags.IsEmpty)
                    Volatile.Write(ref totals.Untagged, value);
                else
                    totals.Tagged[Labels(tags)] = value;
                return;
            }
            if (tags.IsEmpty)
            {
                Interlocked.Add(ref totals.Untagged, value);
                return;
            }
            totals.Tagged.AddOrUpdate(Labels(tags), value, (_, sum) => sum + value);
        });
        _listener.Start();
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var text = new StringBuilder();
        foreach (var (key, value) in tags)
        {
            if (text.Length > 0)
                text.Append(',');
            text.Append(key.Replace('.', '_')).Append("=\"").Append(Convert.ToString(value, CultureInfo.InvariantCulture)).Append('"');
        }
        return text.ToString();
    }

    /// <summary>Every instrument of the meter, in the Prometheus text format.</summary>
    public string Format()
    {
        _listener.RecordObservableInstruments();
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var totals in _totals.Values.OrderBy(t => t.Instrument.Name, StringComparer.Ordinal))
        {
            bool counter = totals.Instrument is Counter<long> or ObservableCounter<long>;
            string name = totals.Instrument.Name.Replace('.', '_') + (counter ? "_total" : "");
            text.Append("# HELP ").Append(name).Append(' ').Append(totals.Instrument.Description).Append('\n');
            text.Append("# TYPE ").Append(name).Append(' ').Append(counter ? "counter" : "gauge").Append('\n');
            long untagged = Volatile.Read(ref totals.Untagged);
            if (untagged != 0 || totals.Tagged.IsEmpty)
                text.Append(name).Append(' ').Append(untagged.ToString(CultureInfo.InvariantCulture)).Append('\n');
            foreach (var (labels, sum) in totals.Tagged.OrderBy(p => p.Key, StringComparer.Ordinal))
                text.Append(name).Append('{').Append(labels).Append("} ").Append(sum.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();
}

using System.Buffers;
using System.Text.Json;

namespace Duplex.Hub;

/// <summary>A message published to a channel, with its place in the channel's order.</summary>
public sealed class HubMessage
{
    private PreparedMessage? _event;

    /// <summary>A message as an engine stores and hands it on (engines make these; applications read them).</summary>
    public HubMessage(string channel, string epoch, long offset, ReadOnlyMemory<byte> data, string from, DateTimeOffset time)
    {
        Channel = channel;
        Epoch = epoch;
        Offset = offset;
        Data = data;
        From = from;
        Time = time;
    }

    /// <summary>The channel it was published to.</summary>
    public string Channel { get; }

    /// <summary>The channel stream's epoch: offsets are comparable only within one epoch.</summary>
    public string Epoch { get; }

    /// <summary>Position in the channel's epoch: 1 for the first message, then one more each time.</summary>
    public long Offset { get; }

    /// <summary>The published data, as raw JSON.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The publisher's client id.</summary>
    public string From { get; }

    /// <summary>When the hub accepted it.</summary>
    public DateTimeOffset Time { get; }

    /// <summary>The `message` event, framed once and shared by every subscriber.</summary>
    internal PreparedMessage Event => _event ??= PreparedMessage.Create(Json.Write(Write), MessageType.Text);

    /// <summary>
    /// A message whose event is framed at once and whose <see cref="Data"/> is a slice of that
    /// frame: one copy of the bytes, however long history keeps it.
    /// </summary>
    internal static HubMessage CreateFramed(string channel, string epoch, long offset, ReadOnlyMemory<byte> data, string from, DateTimeOffset time)
    {
        var draft = new HubMessage(channel, epoch, offset, data, from, time);
        var json = Json.Write(draft.Write);
        int at = json.AsSpan().IndexOf("\"data\":"u8) + 7; // the data's place: after the fixed fields, before any user text
        var framed = PreparedMessage.Create(json, MessageType.Text);
        return new HubMessage(channel, epoch, offset, framed.Payload.Slice(at, data.Length), from, time) { _event = framed };
    }

    /// <summary>The bytes this message keeps alive.</summary>
    internal long MemorySize => (_event?.MemorySize ?? Data.Length) + 96;

    internal void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("type", "message");
        w.WriteString("channel", Channel);
        w.WriteString("epoch", Epoch);
        w.WriteNumber("offset", Offset);
        w.WritePropertyName("data");
        w.WriteRawValue(Data.Span, skipInputValidation: true);
        w.WriteString("from", From);
        w.WriteString("time", Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteEndObject();
    }
}

internal static class Json
{
    /// <summary>Writes a property whose value is raw JSON, or null.</summary>
    public static void WriteRaw(Utf8JsonWriter w, string name, byte[]? json)
    {
        w.WritePropertyName(name);
        if (json is null)
            w.WriteNullValue();
        else
            w.WriteRawValue(json, skipInputValidation: true);
    }

    /// <summary>Writes one JSON value with a fresh writer and returns its UTF-8 bytes.</summary>
    public static byte[] Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
            write(writer);
        return buffer.WrittenSpan.ToArray();
    }
}

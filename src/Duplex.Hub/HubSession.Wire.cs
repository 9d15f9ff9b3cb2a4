using System.Text.Json;
using System.Text.RegularExpressions;
using Duplex.Protocol;

namespace Duplex.Hub;

// The JSON wire format of answers and the channel-name rule (docs/hub-protocol.md).
internal sealed partial class HubSession
{
    [GeneratedRegex("^[A-Za-z0-9_.:/-]{1,64}$")]
    private static partial Regex ChannelName();

    private bool TryChannel(JsonElement root, string? id, out string channel)
    {
        channel = root.TryGetProperty("channel", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() ?? "" : "";
        if (ChannelName().IsMatch(channel))
            return true;
        Fail(id, "bad_channel", "a channel name is 1-64 letters, digits, or - _ . : /");
        return false;
    }

    private void Ok(string? id, Action<Utf8JsonWriter>? fields = null)
    {
        if (id is null)
            return;
        Send(Json.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", "ok");
            MessageHub.WriteId(w, id);
            fields?.Invoke(w);
            w.WriteEndObject();
        }));
    }

    private bool Fail(string? id, string code, string text)
    {
        Send(Json.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", "error");
            MessageHub.WriteId(w, id);
            w.WriteString("code", code);
            w.WriteString("message", text);
            w.WriteEndObject();
        }));
        return false;
    }
}

using System.Text.Json;
using System.Text.RegularExpressions;
using Duplex.Protocol;

namespace Duplex.Hub;

// The JSON wire format of answers and the channel-name rule (docs/hub-protocol.md).
internal sealed partial class HubSession
{
    [GeneratedRegex(@"\A[A-Za-z0-9_.:/-]{1,64}\z")] // \z: "$" would let a trailing newline through
    private static partial Regex ChannelName();

    private enum Access
    {
        Any,        // leave: always allowed
        Read,       // join, history, presence: what the token lets the client join
        Publish,
    }

    // The one check every request that names a channel goes through: the name rule, then the
    // token's permission for what the request does with the channel.
    private bool TryChannel(JsonElement root, string? id, out string channel, Access access = Access.Any)
    {
        channel = root.TryGetProperty("channel", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() ?? "" : "";
        if (!ChannelName().IsMatch(channel))
        {
            Fail(id, "bad_channel", "a channel name is 1-64 letters, digits, or - _ . : /");
            return false;
        }
        bool allowed = access switch
        {
            Access.Read => Identity.CanJoin(channel),
            Access.Publish => Identity.CanPublish(channel),
            _ => true,
        };
        if (!allowed)
            Fail(id, "forbidden", access == Access.Publish ? $"you may not publish to '{channel}'" : $"you may not join '{channel}'");
        return allowed;
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
        Refuse(id, code, text);
        return false;
    }

    /// <summary>An error answer that is not the client's fault (not counted as malformed).</summary>
    internal void Refuse(string? id, string code, string text)
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
    }
}

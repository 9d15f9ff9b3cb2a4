using Duplex.Protocol;

namespace Duplex.Cli;

/// <summary>
/// What `duplex connect` prints: messages received on standard output (marked '< ' on a
/// terminal), everything else (connected, closed, pings, errors) on standard error. Colour only
/// where the console allows it (a terminal, no NO_COLOR, no --no-color).
/// </summary>
internal sealed class ConnectOutput
{
    private const string Green = "32", Cyan = "36", Red = "31";
    private readonly bool _colour;
    private readonly bool _hex;
    private TaskCompletionSource? _answer;   // --one-message: completed by the first message printed

    public ConnectOutput(CliConsole console, bool noColor, string binaryFormat)
    {
        if (binaryFormat is not ("hex" or "base64"))
            throw new UsageException($"--binary-format must be hex or base64, not '{binaryFormat}'");
        Console = console;
        _colour = console.Colour && !noColor;
        _hex = binaryFormat == "hex";
    }

    public CliConsole Console { get; }

    private string Paint(string text, string colour) => _colour ? $"\u001b[{colour}m{text}\u001b[0m" : text;

    /// <summary>A task that completes when the next message has been printed.</summary>
    public Task ExpectAnswer()
    {
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _answer, answer);
        return answer.Task;
    }

    public async Task ReceivedAsync(WebSocketMessage message)
    {
        string text = message.Type == MessageType.Text
            ? message.GetText()
            : _hex ? Convert.ToHexStringLower(message.Payload.Span) : Convert.ToBase64String(message.Payload.Span);
        string marker = Console.Interactive ? Paint("< ", Green) : "";
        await Console.Out.WriteLineAsync(marker + text);
        await Console.Out.FlushAsync();
        Volatile.Read(ref _answer)?.TrySetResult();
    }

    public void Note(string text) => Console.Error.WriteLine(Paint(text, Cyan));

    public Task NoteAsync(string text) => Console.Error.WriteLineAsync(Paint(text, Cyan));

    public Task ClosedAsync(WebSocketMessage close) =>
        Console.Error.WriteLineAsync(Paint($"closed: {(int)close.CloseStatus}{(string.IsNullOrEmpty(close.CloseReason) ? "" : " " + close.CloseReason)}",
            close.CloseStatus == CloseStatus.NormalClosure ? Cyan : Red));
}

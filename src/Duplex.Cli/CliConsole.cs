namespace Duplex.Cli;

/// <summary>Where a command reads and writes: the real console, or buffers in tests.</summary>
internal sealed class CliConsole(TextReader input, TextWriter output, TextWriter error, bool interactive)
{
    public TextReader In { get; } = input;

    public TextWriter Out { get; } = output;

    public TextWriter Error { get; } = error;

    /// <summary>True when a person is at the terminal: prompts and markers are shown.</summary>
    public bool Interactive { get; } = interactive;

    public static CliConsole System() => new(Console.In, Console.Out, Console.Error,
        !Console.IsInputRedirected && !Console.IsOutputRedirected);
}

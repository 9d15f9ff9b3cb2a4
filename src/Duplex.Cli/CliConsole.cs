namespace Duplex.Cli;

/// <summary>Where a command reads and writes: the real console, or buffers in tests.</summary>
internal sealed class CliConsole(TextReader input, TextWriter output, TextWriter error, bool interactive, bool colour = false)
{
    public TextReader In { get; } = input;

    public TextWriter Out { get; } = output;

    public TextWriter Error { get; } = error;

    /// <summary>True when a person is at the terminal: prompts and markers are shown.</summary>
    public bool Interactive { get; } = interactive;

    /// <summary>True when colour may be used: standard output is a terminal that has it, and NO_COLOR is not set.</summary>
    public bool Colour { get; } = colour;

    public static CliConsole System() => new(Console.In, Console.Out, Console.Error,
        !Console.IsInputRedirected && !Console.IsOutputRedirected,
        !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"))
            && Environment.GetEnvironmentVariable("TERM") is not (null or "" or "dumb"));
}

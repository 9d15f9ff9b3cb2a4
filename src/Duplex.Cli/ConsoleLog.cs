using Microsoft.Extensions.Logging;

namespace Duplex.Cli;

/// <summary>
/// `duplex serve`'s log: one line per event on standard error, "2026-12-02T18:00:00.000Z info: …",
/// from <c>--log-level</c> up. Lines from several threads never interleave (TextWriter.Synchronized).
/// </summary>
internal sealed class ConsoleLog(TextWriter output, LogLevel minimum) : ILogger
{
    private readonly TextWriter _output = TextWriter.Synchronized(output);

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
            return;
        string text = formatter(state, exception);
        // The exception's type and message only: a server log line, never a stack trace.
        if (exception is not null && !text.Contains(exception.Message, StringComparison.Ordinal))
            text += $" ({exception.GetType().Name}: {exception.Message})";
        _output.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {Name(logLevel)}: {text}");
    }

    private static string Name(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "error",
        _ => "crit",
    };

    /// <summary>A --log-level value: trace, debug, info(rmation), warn(ing), error or none.</summary>
    public static LogLevel ParseLevel(string value) => value.ToLowerInvariant() switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "info" or "information" => LogLevel.Information,
        "warn" or "warning" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "none" => LogLevel.None,
        _ => throw new UsageException($"--log-level must be trace, debug, info, warn, error or none, not '{value}'"),
    };
}

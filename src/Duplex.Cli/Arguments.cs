using System.Globalization;

namespace Duplex.Cli;

/// <summary>A mistake in the command line: printed as one line, with the usage, and exit code 64.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A small command-line parser: `--name value`, `--name=value`, flags, repeated options and
/// positional arguments, checked against what the command declares.
/// </summary>
internal sealed class Arguments
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);
    private readonly List<string> _positional = [];

    private Arguments() { }

    /// <param name="valued">Options that take a value.</param>
    /// <param name="flags">Options that take none.</param>
    /// <param name="shortNames">One-letter names for some of them (<c>-H</c> for <c>--header</c>), as wscat and websocat spell them.</param>
    public static Arguments Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> valued, IReadOnlyCollection<string> flags,
        IReadOnlyDictionary<string, string>? shortNames = null)
    {
        var parsed = new Arguments();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (shortNames is not null && arg.Length == 2 && arg[0] == '-' && shortNames.TryGetValue(arg, out var longName))
                arg = "--" + longName;
            if (arg == "--")
            {
                parsed._positional.AddRange(args.Skip(i + 1));
                break;
            }
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                if (arg.StartsWith('-') && arg.Length > 1)
                    throw new UsageException($"unknown option '{arg}'");
                parsed._positional.Add(arg);
                continue;
            }
            string name = arg[2..];
            string? value = null;
            int eq = name.IndexOf('=');
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }
            if (flags.Contains(name))
            {
                if (value is not null)
                    throw new UsageException($"option '--{name}' takes no value");
                parsed._flags.Add(name);
            }
            else if (valued.Contains(name))
            {
                if (value is null)
                {
                    if (i + 1 >= args.Count)
                        throw new UsageException($"option '--{name}' needs a value");
                    value = args[++i];
                }
                if (!parsed._values.TryGetValue(name, out var list))
                    parsed._values[name] = list = [];
                list.Add(value);
            }
            else
            {
                throw new UsageException($"unknown option '--{name}'");
            }
        }
        return parsed;
    }

    public IReadOnlyList<string> Positional => _positional;

    public bool Flag(string name) => _flags.Contains(name);

    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out var list) ? list : [];

    /// <summary>The option's value (the last one, if given twice), or null.</summary>
    public string? Value(string name) => _values.TryGetValue(name, out var list) ? list[^1] : null;

    public int Int(string name, int fallback, int min, int max)
    {
        string? text = Value(name);
        if (text is null)
            return fallback;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
            throw new UsageException($"--{name} must be a whole number from {min} to {max}, not '{text}'");
        return value;
    }

    public double Seconds(string name, double fallback, double min, double max)
    {
        string? text = Value(name);
        if (text is null)
            return fallback;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || value < min || value > max || double.IsNaN(value))
            throw new UsageException($"--{name} must be a number of seconds from {min} to {max}, not '{text}'");
        return value;
    }

    /// <summary>A byte count such as 65536, 64k, 16m or 1g.</summary>
    public long Bytes(string name, long fallback, long min, long max)
    {
        string? text = Value(name);
        if (text is null)
            return fallback;
        long multiplier = 1;
        string digits = text;
        if (text.Length > 1)
        {
            multiplier = char.ToLowerInvariant(text[^1]) switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, _ => 1 };
            if (multiplier != 1)
                digits = text[..^1];
        }
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long value)
            || value > max / multiplier || value * multiplier < min)
            throw new UsageException($"--{name} must be a size from {min} to {max} bytes (like 64k or 16m), not '{text}'");
        return value * multiplier;
    }
}

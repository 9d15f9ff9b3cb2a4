using System.Runtime.InteropServices;

namespace Duplex.Cli;

/// <summary>Raises the soft limit on open files to the hard limit, as servers do: each connection is a file descriptor.</summary>
internal static partial class ResourceLimits
{
    private const int RlimitNofile = 7; // Linux

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, out RLimit limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setrlimit(int resource, in RLimit limit);

    public static void RaiseOpenFileLimit()
    {
        if (!OperatingSystem.IsLinux())
            return;
        try
        {
            if (getrlimit(RlimitNofile, out var limit) == 0 && limit.Current < limit.Maximum)
            {
                limit.Current = limit.Maximum;
                _ = setrlimit(RlimitNofile, limit);
            }
        }
        catch (DllNotFoundException)
        {
        }
        catch (EntryPointNotFoundException)
        {
        }
    }
}

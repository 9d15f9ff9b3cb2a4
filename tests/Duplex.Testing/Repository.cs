namespace Duplex.Testing;

/// <summary>Where the repository's files are, seen from a test's output directory.</summary>
public static class Repository
{
    private static readonly Lazy<string> Found = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "Duplex.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException("the repository root (Duplex.slnx) is not above " + AppContext.BaseDirectory);
    });

    /// <summary>The directory that holds Duplex.slnx.</summary>
    public static string Root => Found.Value;

    /// <summary>A path inside the repository, from its parts.</summary>
    public static string File(params string[] parts) => Path.Combine([Root, .. parts]);
}

using System.Globalization;

namespace HugeFault.Oracle;

/// <summary>
/// The real kernels the harness boots (tools/realkernel/setup.sh unpacks each Debian 12 series into
/// <c>.cache/realkernel/kernels/SERIES/</c>) and where their recorded traces live
/// (<c>tools/realkernel/oracle-results/SERIES/</c>). A series is "major.minor"; the model follows it through
/// <see cref="KernelConfig.KernelVersion"/>.
/// </summary>
public static class OracleKernels
{
    /// <summary>The kernel series Debian 12 ships: its own 6.1 and the 6.12 from the security suite.</summary>
    public static readonly IReadOnlyList<string> Known = ["6.1", "6.12"];

    /// <summary>The series run.sh boots when none is named.</summary>
    public const string Default = "6.12";

    /// <summary>The model version of a series ("6.1" → 6.1).</summary>
    public static Version VersionOf(string series) => Version.Parse(series);

    /// <summary>The series of a kernel release as uname -r prints it ("6.1.0-57-amd64", "6.12.117+deb12-amd64" → "6.1", "6.12"), or null.</summary>
    public static string? SeriesOf(string release)
    {
        var parts = release.Split('.', 3);
        if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)) return null;
        var minor = new string(parts[1].TakeWhile(char.IsAsciiDigit).ToArray());
        return minor.Length == 0 ? null : $"{major}.{int.Parse(minor, CultureInfo.InvariantCulture)}";
    }

    /// <summary>The kernel cache: $CACHE, or REPO/.cache/realkernel.</summary>
    public static string Cache(string repo) => Environment.GetEnvironmentVariable("CACHE") ?? Path.Combine(repo, ".cache", "realkernel");

    /// <summary>Known series that setup.sh has unpacked into <paramref name="cache"/>.</summary>
    public static IReadOnlyList<string> InCache(string cache) =>
        Known.Where(s => File.Exists(Path.Combine(cache, "kernels", s, "kernel-version"))).ToList();

    /// <summary>Known series with a folder of traces under <paramref name="dir"/>.</summary>
    public static IReadOnlyList<string> Recorded(string dir) =>
        Known.Where(s => Directory.Exists(Path.Combine(dir, s))).ToList();

    /// <summary>A one-line error for a series that is not known, or null.</summary>
    public static string? Check(string series) =>
        Known.Contains(series) ? null : $"--kernel '{series}' is not a kernel the harness knows (use one of: {string.Join(", ", Known)})";
}

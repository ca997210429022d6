namespace HugeFault.Tests.Cli;

/// <summary>
/// Output paths are checked before any work by opening the temp file the output is later written through: an
/// unwritable place is a one-line usage error, and the check itself leaves no file of its own behind.
/// </summary>
public class OutputFileTests
{
    private static string NewDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "hugefault-output-check", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Theory]
    [InlineData("compare", "--out", "/proc/hugefault-report.json")]
    [InlineData("compare", "--html", "/proc/hugefault-report.html")]
    [InlineData("fleet", "--plot", "/proc/sys")]
    public void An_unwritable_output_is_one_usage_line_and_exit_2_before_any_work(string cmd, string flag, string path)
    {
        string[] args = cmd == "fleet" ? [cmd, "--servers", "100000000", flag, path] : [cmd, "builtin:policies/shared-1g", flag, path];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (exit, stdout, stderr) = CliProcess.InProcess(args);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"hugefault {cmd}: {flag} '{path}': cannot write there", line);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the 100-million-server fleet must not have started");
    }

    [Fact]
    public void A_command_that_fails_after_the_check_leaves_the_folder_as_it_was()
    {
        string dir = NewDir();
        var (exit, _, stderr) = CliProcess.InProcess("compare", Path.Combine(dir, "no-such-scenario.yaml"), "--out", Path.Combine(dir, "r.json"), "--plot", Path.Combine(dir, "plots"));
        Assert.Equal(2, exit);
        Assert.Contains("no such file or directory", stderr);
        Assert.Equal([Path.Combine(dir, "plots")], Directory.GetFileSystemEntries(dir));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir, "plots")));
    }

    [Fact]
    public void A_written_report_is_the_only_file_left_and_the_same_file_named_twice_is_written_once_each()
    {
        string dir = NewDir();
        string html = Path.Combine(dir, "r.html");
        var (exit, _, _) = CliProcess.InProcess("compare", "builtin:policies/keep-mapped", "--out", html, "--html", html);
        Assert.Equal(0, exit);
        Assert.Equal([html], Directory.GetFileSystemEntries(dir));
        Assert.StartsWith("<!DOCTYPE html>", File.ReadAllText(html), StringComparison.OrdinalIgnoreCase);
    }
}

using System.Text.Json;
using HugeFault.Cli.Commands;

namespace HugeFault.Tests.Cli;

/// <summary>`hugefault run`: exit codes, where errors go, and byte-identical output for the same scenario.</summary>
public sealed class RunCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hugefault-run-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, params string[] lines)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    /// <summary>The command line in-process (its exit code, stdout and stderr as a user sees them).</summary>
    private static (int Exit, string Out, string Err) Cli(params string[] args) => CliProcess.InProcess(args);

    private static readonly string[] PassingScenario =
    [
        "name: pool accounting",
        "host: {memory: 8G, hugepages: {1G: 2}}",
        "processes: [A]",
        "steps:",
        "  - memfd_create: {as: A, name: g, flags: [MFD_HUGETLB, MFD_HUGE_1GB], fd: g}",
        "  - ftruncate: {as: A, fd: g, length: 1G}",
        "  - mmap: {as: A, length: 1G, flags: [MAP_SHARED], fd: g, name: a}",
        "    expect: {hugepages: {1G: {total: 2, free: 2, resv: 1}}}",
        "  - store: {as: A, map: a, offset: 0x1000, length: 4K, pattern: p1}",
        "    expect: {outcome: ok, hugepages: {1G: {total: 2, free: 1, resv: 0}}}",
    ];

    [Fact]
    public void Running_a_malformed_file_exits_2_with_file_line_column_on_stderr_and_no_stack_trace()
    {
        var path = Write("bad.yaml",
            "name: broken",
            "host: {memory: 8G}",
            "processes: [A]",
            "steps:",
            "  - mmapp: {as: A}",
            "  - ftruncate: {as: A, fd: nofd, length: 1Gi}");
        var (exit, stdout, stderr) = Cli("run", path);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        Assert.Contains($"{path}:5:5: unknown operation 'mmapp'", stderr);
        Assert.Contains($"{path}:6:", stderr);
        Assert.Contains("fd 'nofd' is not defined", stderr);
        Assert.Contains("'length' value '1Gi' is not a size", stderr);
        Assert.Contains("hint:", stderr);
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("Exception", stderr);
    }

    [Fact]
    public void Running_a_file_with_a_yaml_syntax_error_exits_2_naming_the_line()
    {
        var path = Write("syntax.yaml", "name: t", "host: a: b");
        var (exit, _, stderr) = Cli("run", path);
        Assert.Equal(2, exit);
        Assert.Matches($@"{System.Text.RegularExpressions.Regex.Escape(path)}:2:\d+: YAML syntax error", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void Running_a_missing_file_exits_2_with_one_line_and_no_stack_trace()
    {
        var (exit, _, stderr) = Cli("run", Path.Combine(_dir, "nope.yaml"));
        Assert.Equal(2, exit);
        Assert.Contains("no such file or directory", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void A_passing_scenario_exits_0()
    {
        var path = Write("ok.yaml", PassingScenario);
        var w = new StringWriter();
        Assert.Equal(0, RunCommand.Execute([path], json: false, policy: null, summaryOnly: true, w));
        Assert.Contains("1 of 1 scenarios passed", w.ToString());
    }

    [Fact]
    public void A_failing_expectation_exits_1_and_names_the_step_and_its_line()
    {
        var lines = PassingScenario.ToArray();
        lines[^1] = "    expect: {outcome: ok, hugepages: {1G: {total: 2, free: 2, resv: 0}}}"; // free is 1 in truth
        var path = Write("fail.yaml", lines);
        var w = new StringWriter();
        int exit = RunCommand.Execute([path], json: false, policy: null, summaryOnly: true, w);
        Assert.Equal(1, exit);
        var text = w.ToString();
        Assert.Contains($"{path}:9: step 4 (store): hugepages 1G free: expected 2, got 1", text);
        Assert.Contains("0 of 1 scenarios passed", text);
    }

    [Fact]
    public void A_failing_expectation_in_json_mode_is_an_expectation_failed_line_with_the_position()
    {
        var lines = PassingScenario.ToArray();
        lines[^1] = "    expect: {outcome: SIGBUS}";
        var path = Write("fail.yaml", lines);
        var w = new StringWriter();
        Assert.Equal(1, RunCommand.Execute([path], json: true, policy: null, summaryOnly: false, w));
        var failed = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).Single(j => j.GetProperty("kind").GetString() == "expectation_failed");
        Assert.Equal(4, failed.GetProperty("step").GetInt32());
        Assert.Equal($"{path}:9:5", failed.GetProperty("line").GetString());
        Assert.Contains("outcome: expected SIGBUS, got ok", failed.GetProperty("detail").GetString());
    }

    [Fact]
    public void The_failing_exit_code_comes_through_the_real_binary_too()
    {
        var lines = PassingScenario.ToArray();
        lines[^1] = "    expect: {outcome: SIGBUS}";
        var path = Write("fail.yaml", lines);
        var (exit, stdout, stderr) = CliProcess.Run("run", "--summary", path);
        Assert.Equal(1, exit);
        Assert.Contains("step 4 (store)", stdout);
        Assert.Contains($"{path}:9:", stdout);
        Assert.Equal("", stderr);
    }
}

/// <summary>The same scenario gives the same bytes, run after run.</summary>
public class RunDeterminismTests
{
    [Theory]
    [InlineData("builtin:conformance/mainline/")]
    [InlineData("builtin:conformance/mainline/09-pread-across-poison-chunk-4K.yaml")]
    public void Running_the_same_scenarios_twice_gives_identical_json_lines(string which)
    {
        string Once()
        {
            var w = new StringWriter();
            Assert.Equal(0, RunCommand.Execute([which], json: true, policy: null, summaryOnly: false, w));
            return w.ToString();
        }
        var first = Once();
        var second = Once();
        Assert.True(first.Length > 1000);
        Assert.Equal(first, second);
        foreach (var line in first.Split('\n', StringSplitOptions.RemoveEmptyEntries)) JsonDocument.Parse(line).Dispose();
    }
}

/// <summary>Scenarios run in parallel, printed in order: the same bytes whatever the thread count.</summary>
public class RunThreadsTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_output_is_byte_identical_on_1_2_and_5_threads(bool json)
    {
        string Once(int threads)
        {
            var w = new StringWriter();
            Assert.Equal(0, RunCommand.Execute(["builtin:conformance/mainline/", "builtin:vm/vm-4g-one-error"], json, policy: null, summaryOnly: false, w, new StringWriter(), threads));
            return w.ToString();
        }
        string one = Once(1);
        Assert.Contains(json ? "\"kind\":\"summary\"" : "scenarios passed", one);
        Assert.Equal(one, Once(2));
        Assert.Equal(one, Once(5));
    }

    [Fact]
    public void A_job_that_throws_stops_the_output_where_a_sequential_loop_would_with_its_own_exception()
    {
        var consumed = new List<int>();
        var e = Assert.Throws<InvalidOperationException>(() => OrderedParallel.Run(40, 3,
            i => i == 17 ? throw new InvalidOperationException("job 17") : i * i,
            (i, r) => { Assert.Equal(i * i, r); consumed.Add(i); }));
        Assert.Equal("job 17", e.Message);
        Assert.Equal(Enumerable.Range(0, 17), consumed);
    }
}

using System.Text.Json.Nodes;
using HugeFault.Cli.Commands;
using HugeFault.Oracle;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Oracle;

/// <summary>
/// `hugefault oracle --model-only` over the committed real traces (tools/realkernel/oracle-results/SERIES/) reproduces
/// each kernel's committed summary.json: the same scenarios compared, the same steps matching and the same mismatches
/// (model value / real value). After a model change, refresh it with
/// `./hugefault oracle --model-only --write-summary scenarios/` and review the diff.
/// </summary>
public class OracleRecordedTests
{
    private static string Recorded => Path.Combine(OracleDiffTests.Repo, OracleSession.RecordedDir);

    private static JsonArray Summary(string series) =>
        (JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(Recorded, series, "summary.json")))!["scenarios"]!;

    public static TheoryData<string, string> RecordedScenarios()
    {
        var d = new TheoryData<string, string>();
        foreach (var series in OracleKernels.Recorded(Recorded))
            foreach (var s in Summary(series)) d.Add(series, (string)s!["scenario"]!);
        return d;
    }

    [Theory]
    [MemberData(nameof(RecordedScenarios))]
    public void Model_only_comparison_reproduces_the_recorded_summary(string series, string key)
    {
        var want = Summary(series).Single(s => (string)s!["scenario"]! == key)!;
        var (sc, errs) = ScenarioParser.ParseFile(Path.Combine(OracleDiffTests.Repo, (string)want["file"]!));
        Assert.Empty(errs);
        var got = OracleSession.CompareRecorded(sc!, Recorded, series);
        Assert.Equal((string)want["status"]!, got.Status);
        Assert.Equal((int)want["matched_steps"]!, got.MatchedSteps);
        Assert.Equal((int)want["mismatched_steps"]!, got.MismatchedSteps);
        Assert.Equal((bool?)want["real_passed"], got.RealPassed);
        var wantMismatches = ((JsonArray)want["steps"]!).SelectMany(st => ((JsonArray)st!["mismatches"]!)
            .Select(f => $"step {(int)st["i"]!} {(string)f!["field"]!}: model {(string)f["model"]!} / real {(string)f["real"]!}")).ToList();
        Assert.Equal(wantMismatches, RealKernelTests.Mismatches(got));
        if (got.Status == "compared") Assert.Equal(series, OracleKernels.SeriesOf(got.Kernel));
    }

    [Fact]
    public void Every_mainline_conformance_scenario_has_a_recorded_result_on_every_recorded_kernel()
    {
        var recorded = OracleKernels.Recorded(Recorded);
        Assert.Contains(OracleKernels.Default, recorded);
        foreach (var series in recorded)
        {
            var keys = Summary(series).Select(s => (string)s!["scenario"]!).ToHashSet();
            foreach (var f in Directory.EnumerateFiles(Path.Combine(OracleDiffTests.Repo, "scenarios/conformance/mainline"), "*.yaml"))
                Assert.Contains(Path.GetFileNameWithoutExtension(f), keys);
            Assert.True(Summary(series).Count(s => (string)s!["status"]! == "compared") >= 20, $"kernel {series}: fewer than 20 scenarios compared");
        }
    }

    [Fact]
    public void The_command_prints_the_kernel_and_per_step_verdicts_without_booting()
    {
        var outw = new StringWriter(); var err = new StringWriter();
        string dir = Path.Combine(OracleDiffTests.Repo, "scenarios/conformance/mainline");
        int rc = OracleCommand.Execute([Path.Combine(dir, "21-uffdio-poison.yaml"), Path.Combine(dir, "24-kvm-guest-touches-poisoned-page.yaml")],
            modelOnly: true, record: false, results: null, timeoutS: 1, verbose: false, strict: false, outw, err, kernels: ["6.12"]);
        string o = outw.ToString();
        Assert.True(rc == 0, err.ToString() + o);
        Assert.Contains("kernels used for the real traces: 6.12.", o);
        Assert.Contains("== 21-uffdio-poison @6.12 [6.12.", o);
        Assert.Contains("    5 uffdio_poison    A  match", o);
        Assert.Contains("== 24-kvm-guest-touches-poisoned-page @6.12 [-] model-only: step 6 uses the model-only operation 'hw_error'", o);
        Assert.Contains("kernel 6.12: 1 of 2 scenarios compared", o);
    }

    [Fact]
    public void An_unknown_kernel_series_is_refused_before_any_work()
    {
        var outw = new StringWriter(); var err = new StringWriter();
        int rc = OracleCommand.Execute([Path.Combine(OracleDiffTests.Repo, "scenarios/conformance/mainline")], modelOnly: true, record: false, results: null,
            timeoutS: 1, verbose: false, strict: false, outw, err, kernels: ["5.10"]);
        Assert.Equal(2, rc);
        Assert.Equal("--kernel '5.10' is not a kernel the harness knows (use one of: 6.1, 6.12)", err.ToString().Trim());
        Assert.Equal("", outw.ToString());
    }

    [Theory]
    [InlineData("6.1.0-57-amd64", "6.1")]
    [InlineData("6.12.117+deb12-amd64", "6.12")]
    [InlineData("garbage", null)]
    public void A_kernel_release_maps_to_its_series(string release, string? series) => Assert.Equal(series, OracleKernels.SeriesOf(release));
}

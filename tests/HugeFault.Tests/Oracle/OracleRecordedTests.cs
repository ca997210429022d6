using System.Text.Json.Nodes;
using HugeFault.Cli.Commands;
using HugeFault.Oracle;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Oracle;

/// <summary>
/// `hugefault oracle --model-only` over the committed real traces (tools/realkernel/oracle-results/) reproduces
/// the committed summary.json: the same scenarios compared, the same steps matching and the same mismatches
/// (model value / real value). After a model change, refresh it with
/// `./hugefault oracle --model-only --write-summary scenarios/conformance/mainline/` and review the diff.
/// </summary>
public class OracleRecordedTests
{
    private static string Recorded => Path.Combine(OracleDiffTests.Repo, OracleSession.RecordedDir);

    private static JsonArray Summary() => (JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(Recorded, "summary.json")))!["scenarios"]!;

    public static TheoryData<string> RecordedScenarios()
    {
        var d = new TheoryData<string>();
        foreach (var s in Summary()) d.Add((string)s!["scenario"]!);
        return d;
    }

    [Theory]
    [MemberData(nameof(RecordedScenarios))]
    public void Model_only_comparison_reproduces_the_recorded_summary(string key)
    {
        var want = Summary().Single(s => (string)s!["scenario"]! == key)!;
        var (sc, errs) = ScenarioParser.ParseFile(Path.Combine(OracleDiffTests.Repo, (string)want["file"]!));
        Assert.Empty(errs);
        var got = OracleSession.CompareRecorded(sc!, Recorded);
        Assert.Equal((string)want["status"]!, got.Status);
        Assert.Equal((int)want["matched_steps"]!, got.MatchedSteps);
        Assert.Equal((int)want["mismatched_steps"]!, got.MismatchedSteps);
        Assert.Equal((bool?)want["real_passed"], got.RealPassed);
        var wantMismatches = ((JsonArray)want["steps"]!).SelectMany(st => ((JsonArray)st!["mismatches"]!)
            .Select(f => $"step {(int)st["i"]!} {(string)f!["field"]!}: model {(string)f["model"]!} / real {(string)f["real"]!}")).ToList();
        Assert.Equal(wantMismatches, RealKernelTests.Mismatches(got));
        if (got.Status == "compared") Assert.StartsWith("6.12.", got.Kernel);
    }

    [Fact]
    public void Every_mainline_conformance_scenario_has_a_recorded_result()
    {
        var keys = Summary().Select(s => (string)s!["scenario"]!).ToHashSet();
        foreach (var f in Directory.EnumerateFiles(Path.Combine(OracleDiffTests.Repo, "scenarios/conformance/mainline"), "*.yaml"))
            Assert.Contains(Path.GetFileNameWithoutExtension(f), keys);
        Assert.True(Summary().Count(s => (string)s!["status"]! == "compared") >= 20);
    }

    [Fact]
    public void The_command_prints_the_kernel_and_per_step_verdicts_without_booting()
    {
        var outw = new StringWriter(); var err = new StringWriter();
        string dir = Path.Combine(OracleDiffTests.Repo, "scenarios/conformance/mainline");
        int rc = OracleCommand.Execute([Path.Combine(dir, "21-uffdio-poison.yaml"), Path.Combine(dir, "24-kvm-guest-touches-poisoned-page.yaml")],
            modelOnly: true, record: false, results: null, timeoutS: 1, verbose: false, strict: false, outw, err);
        string o = outw.ToString();
        Assert.True(rc == 0, err.ToString() + o);
        Assert.Contains("kernel used for the real traces: 6.12.", o);
        Assert.Contains("== 21-uffdio-poison [6.12.", o);
        Assert.Contains("    5 uffdio_poison    A  match", o);
        Assert.Contains("== 24-kvm-guest-touches-poisoned-page [-] model-only: step 6 uses the model-only operation 'hw_error'", o);
        Assert.Contains("1 of 2 scenarios compared", o);
    }
}

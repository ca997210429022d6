using System.Text.RegularExpressions;
using HugeFault.Oracle;

namespace HugeFault.Tests.Oracle;

/// <summary>
/// The README's fidelity table (between <c>&lt;!-- fidelity --&gt;</c> and <c>&lt;!-- /fidelity --&gt;</c>) is what the scenario files
/// and the recorded real traces say; every counted assertion passes on the model and, where Linux checked it, on Linux.
/// After recording: <c>HUGEFAULT_README_WRITE=1 dotnet test --project tests/HugeFault.Tests -c Release -- --filter-class
/// HugeFault.Tests.Oracle.FidelityTableTests</c> rewrites the table.
/// </summary>
public class FidelityTableTests
{
    private static readonly Lazy<List<FidelityRow>> Rows = new(() => OracleFidelity.Rows(OracleDiffTests.Repo));

    [Fact]
    public void The_readme_fidelity_table_is_what_the_recorded_traces_say()
    {
        string path = Path.Combine(OracleDiffTests.Repo, "README.md");
        string text = File.ReadAllText(path);
        var m = Regex.Match(text, @"<!-- fidelity -->\n(?<body>.*?)<!-- /fidelity -->", RegexOptions.Singleline);
        Assert.True(m.Success, "README.md has no <!-- fidelity --> … <!-- /fidelity --> block");
        string want = OracleFidelity.Markdown(Rows.Value);
        if (Environment.GetEnvironmentVariable("HUGEFAULT_README_WRITE") == "1")
        {
            File.WriteAllText(path, text[..m.Groups["body"].Index] + want + text[(m.Groups["body"].Index + m.Groups["body"].Length)..]);
            return;
        }
        Assert.True(m.Groups["body"].Value == want, "README fidelity table is stale; regenerate it (see FidelityTableTests):\n" + want);
    }

    [Fact]
    public void Every_counted_assertion_passes_on_the_model_and_where_Linux_checked_it_on_Linux()
    {
        foreach (var r in Rows.Value)
        {
            Assert.True(r.PassOnModel == r.Assertions, $"{r.Suite} on {r.Kernel}: {r.PassOnModel} of {r.Assertions} pass on the model");
            Assert.True(r.PassOnLinux == r.CheckedOnLinux, $"{r.Suite} on {r.Kernel}: {r.PassOnLinux} of {r.CheckedOnLinux} pass on Linux");
            Assert.True(r.Matched == r.Ran, $"{r.Suite} on {r.Kernel}: {r.Matched} of {r.Ran} match in every step");
        }
        Assert.Contains(Rows.Value, r => r.Suite == "scenarios/peers/hgm-v2-selftest" && r.Kernel == "model, policy hgm-v2");
        Assert.Contains(Rows.Value, r => r.Suite == "scenarios/peers/mfr-v3-selftest" && r.Kernel == "model, policy keep-mapped");
        foreach (var k in new[] { "6.1", "6.12" })
            Assert.True(Rows.Value.Where(r => r.Kernel == k).Sum(r => r.Ran) >= 90, $"fewer than 90 scenarios ran on {k}");
    }

    [Fact]
    public void An_assertion_is_one_expected_value()
    {
        const string yaml = """
            name: t
            host: {memory: 4G, hugepages: {2M: 1}}
            processes: [A]
            steps:
              - check:
                expect: {ret: 0, signals: [], hugepages: {2M: {total: 1, free: 1}}, log: [a, b], dead: {A: alive}, trace: [x]}
            """;
        var (sc, errs) = HugeFault.Scenarios.ScenarioParser.Parse("t.yaml", yaml);
        Assert.Empty(errs);
        var e = sc!.Steps[0].Expect!;
        Assert.Equal(8, OracleFidelity.Assertions(e));
        Assert.Equal(7, OracleFidelity.LinuxAssertions(e));
    }
}

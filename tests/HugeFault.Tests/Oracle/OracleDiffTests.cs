using HugeFault.Oracle;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Oracle;

public class OracleDiffTests
{
    private static readonly Dictionary<string, long> Pool = new()
    {
        ["HugePages_Total"] = 2, ["HugePages_Free"] = 1, ["HugePages_Rsvd"] = 0, ["HugePages_Surp"] = 0, ["HardwareCorrupted"] = 4,
        ["1G.total"] = 0, ["1G.free"] = 0, ["1G.resv"] = 0, ["1G.surp"] = 0,
    };

    private static OracleStep Step(string op = "madvise") => new(5, op, "A")
    {
        Ret = 0,
        Signals = [new OracleSignal("A", "SIGBUS", "BUS_MCEERR_AR", "a+0x5000", 21)],
        Log = ["Memory failure: 0x1234: recovery action for huge page: Recovered"],
        Counters = Pool,
    };

    [Fact]
    public void Equal_steps_differ_only_in_pfns_and_pids_and_match()
    {
        var m = Step() with { Log = ["Memory failure: 0x1234: Sending SIGBUS to A:1001 due to hardware memory corruption"] };
        var r = Step() with { Log = ["Memory failure: 0x100e05: Sending SIGBUS to A:146 due to hardware memory corruption"], Signals = [new OracleSignal("A", "SIGBUS", "BUS_MCEERR_AR", "a+20480", 21)] };
        var f = OracleDiff.CompareStep(m, r);
        Assert.All(f, x => Assert.True(x.Match, $"{x.Field}: {x.Model} vs {x.Real}"));
    }

    [Fact]
    public void A_different_counter_return_value_or_signal_is_a_mismatch_with_both_values()
    {
        var m = Step();
        var r = Step() with
        {
            Ret = -1, Errno = "EFAULT",
            Signals = [new OracleSignal("A", "SIGBUS", "BUS_MCEERR_AR", "a+0x5000", 30)],
            Counters = new Dictionary<string, long>(Pool) { ["HardwareCorrupted"] = 8 },
        };
        var bad = OracleDiff.CompareStep(m, r).Where(x => !x.Match).ToDictionary(x => x.Field);
        Assert.Equal(["HardwareCorrupted", "ret", "signals"], bad.Keys.Order());
        Assert.Equal("0", bad["ret"].Model); Assert.Equal("-1 EFAULT", bad["ret"].Real);
        Assert.Equal("4", bad["HardwareCorrupted"].Model); Assert.Equal("8", bad["HardwareCorrupted"].Real);
        Assert.EndsWith("lsb=30", bad["signals"].Real);
    }

    [Fact]
    public void Signals_are_compared_as_a_set_and_log_lines_in_order()
    {
        var two = new[] { new OracleSignal("A", "SIGBUS", "BUS_MCEERR_AR", "a", 21), new OracleSignal("B", "SIGBUS", "BUS_MCEERR_AO", "b", 21) };
        var m = Step() with { Signals = two };
        var r = Step() with { Signals = two.Reverse().ToList() };
        Assert.True(OracleDiff.CompareStep(m, r).Single(f => f.Field == "signals").Match);
        var r2 = r with { Log = ["Memory failure: 0x99: recovery action for huge page: Failed"] };
        var log = OracleDiff.CompareStep(m, r2).Single(f => f.Field == "log");
        Assert.False(log.Match);
        Assert.Contains("Failed", log.Real);
    }

    [Fact]
    public void Loads_compare_outcome_done_and_data()
    {
        var m = new OracleStep(3, "load", "A") { Outcome = "SIGBUS BUS_MCEERR_AR (machine check)", Done = 0, DataMismatches = null, Counters = Pool };
        var r = new OracleStep(3, "load", "A") { Outcome = "SIGBUS BUS_MCEERR_AR", Done = 0, Counters = Pool };
        Assert.All(OracleDiff.CompareStep(m, r), f => Assert.True(f.Match));
        var r2 = r with { Outcome = "ok", Done = 1, DataMismatches = 2 };
        var bad = OracleDiff.CompareStep(m, r2).Where(f => !f.Match).Select(f => f.Field).Order().ToList();
        Assert.Equal(["data", "done", "outcome"], bad);
    }

    [Fact]
    public void A_panic_on_one_side_only_is_a_mismatch()
    {
        var f = OracleDiff.CompareStep(Step() with { Panic = true }, Step());
        Assert.Equal(new FieldDiff("panic", "yes", "no"), Assert.Single(f));
    }

    [Fact]
    public void Expectations_are_evaluated_on_the_real_step_like_the_model_runner_does()
    {
        const string yaml = """
            name: t
            mainline: true
            host: {memory: 4G, hugepages: {2M: 2}}
            processes: [A]
            steps:
              - check: {}
                expect:
                  ret: 0
                  signals:
                    - {to: A, si_code: BUS_MCEERR_AR, si_addr: a+0x5000, si_addr_lsb: 21}
                  meminfo: {HardwareCorrupted: 4, HugePages_Free: 1}
                  log: ["recovery action for huge page: Recovered"]
            """;
        var (sc, errs) = ScenarioParser.Parse("t.yaml", yaml);
        Assert.Empty(errs);
        var e = sc!.Steps[0].Expect!;
        Assert.Empty(OracleExpect.Check(e, Step()));
        var fails = OracleExpect.Check(e, Step() with
        {
            Signals = [new OracleSignal("A", "SIGBUS", "BUS_MCEERR_AR", "a+0x5000", 21), new OracleSignal("B", "SIGBUS", "BUS_MCEERR_AO", "b", 21)],
            Counters = new Dictionary<string, long>(Pool) { ["HardwareCorrupted"] = 8 },
            Log = [],
        });
        Assert.Equal(3, fails.Count);
        Assert.Contains(fails, f => f.StartsWith("unexpected signal(s): B SIGBUS BUS_MCEERR_AO", StringComparison.Ordinal));
        Assert.Contains(fails, f => f == "meminfo HardwareCorrupted: expected 4, got 8");
        Assert.Contains(fails, f => f.StartsWith("log: no line containing", StringComparison.Ordinal));
    }

    [Fact]
    public void The_model_trace_of_a_scenario_compared_with_itself_matches_everywhere()
    {
        var (sc, errs) = ScenarioParser.ParseFile(Path.Combine(Repo, "scenarios/conformance/mainline/06-late-kill-other-process.yaml"));
        Assert.Empty(errs);
        var model = OracleTraces.FromModel(ScenarioRunner.Run(sc!));
        var diff = OracleDiff.Compare(sc!, model, model);
        Assert.All(diff, d => Assert.True(d.Match));
        // the oracle's expectation checker agrees with the model runner's on the model trace
        Assert.All(diff, d => Assert.Empty(d.RealFailures));
    }

    internal static string Repo => OracleSession.RepoRoot(AppContext.BaseDirectory) ?? throw new InvalidOperationException("repo root not found");
}

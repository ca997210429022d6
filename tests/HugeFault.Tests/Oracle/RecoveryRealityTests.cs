using HugeFault.Cli.Commands;
using HugeFault.Oracle;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Oracle;

/// <summary>The model's userspace-migrate policy against the recorded runs of HugeFault.Recovery's demo on Linux 6.12.</summary>
public class RecoveryRealityTests
{
    private static string Dir => Path.Combine(OracleDiffTests.Repo, RecoveryReality.RecordedDir);

    public static TheoryData<string> RecordedCases()
    {
        var d = new TheoryData<string>();
        foreach (var (key, _) in RecoveryReality.Cases) d.Add(key);
        return d;
    }

    [Theory]
    [MemberData(nameof(RecordedCases))]
    public void The_model_agrees_with_every_measured_quantity_of_a_recorded_run(string key)
    {
        var scenario = RecoveryReality.Cases.Single(c => c.Key == key).Scenario;
        var rc = RecoveryReality.CompareFile(key, BuiltinScenarios.Load(scenario), Path.Combine(Dir, key + ".jsonl"));
        Assert.NotNull(rc);
        Assert.StartsWith(key == "refusal" ? "6.1." : "6.12.", rc.Kernel);
        Assert.True(rc.Agreeing >= (key == "refusal" ? 2 : 5), $"{key}: only {rc.Agreeing} quantities compared");
        Assert.True(rc.Differing == 0, $"{key}: " + string.Join("; ", rc.Rows.Where(r => r.Agree == false).Select(r => $"{r.Quantity}: model {r.Model}, Linux {r.Linux}")));
    }

    [Fact]
    public void A_recorded_2MiB_run_lost_exactly_one_raw_page_and_copied_the_rest()
    {
        var real = RealRecovery.Read(Path.Combine(Dir, "2m.jsonl"))!;
        Assert.Equal(("Recovered", 4096L, (2L << 20) - 4096, 12), (real.Outcome, real.LostBytes, real.BytesCopied, real.LaterTouchLsb));
        Assert.Equal(1, real.PoolPagesLost);
    }

    [Fact]
    public void On_linux_6_1_protect_refused_naming_both_missing_features_and_changed_nothing()
    {
        var r = RealRefusal.Read(Path.Combine(Dir, "refusal.jsonl"))!;
        Assert.StartsWith("6.1.", r.Kernel);
        Assert.Equal(["KernelTooOld", "NoUffdPoison"], r.Kinds);
        Assert.True(r.NothingChanged);
    }

    [Fact]
    public void The_command_prints_a_table_per_recorded_case()
    {
        var w = new StringWriter();
        Assert.Equal(0, RecoveryCommand.Execute(null, false, w, new StringWriter()));
        foreach (var (key, _) in RecoveryReality.Cases) Assert.Contains($"{key}: model (userspace-migrate", w.ToString());
        Assert.Contains("compared quantities agree", w.ToString());
    }

    [Fact]
    public void A_missing_results_folder_is_a_one_line_error_with_exit_2()
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(2, HugeFault.Cli.Program.Run(["recovery", "--results", "/nonexistent/recovery-results"], o, e));
        Assert.Equal("", o.ToString());
        Assert.Single(e.ToString().Trim().Split('\n'));
        Assert.Contains("tools/realkernel/recovery.sh --record", e.ToString());
    }
}

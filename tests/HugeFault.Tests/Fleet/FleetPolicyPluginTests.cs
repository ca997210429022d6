using System.CommandLine;
using System.Text.Json;
using HugeFault.Cli.Commands;
using HugeFault.Fleet;
using HugeFault.Mm;
using HugeFault.Policies;

namespace HugeFault.Tests.Fleet;

/// <summary>
/// A design defined only here, in the test project: the baseline, except that a poisoned folio leaving its file is
/// offlined at once (filemap_offline_hwpoison_folio() of the MFD_MF_KEEP_UE_MAPPED series), so a poisoned 1 GiB page
/// is dissolved when its VM exits instead of staying allocated with memory_failure()'s reference. Registering it is the
/// only step: the fleet's effect table asks its kernel model, and <c>fleet</c> runs it by name with no fleet edit.
/// </summary>
internal sealed class FreeOnReleasePolicy(IReadOnlyDictionary<string, string> parameters) : RecoveryPolicyBase(parameters)
{
    public const string PolicyName = "test-free-on-release";

    public override string Name => PolicyName;

    public override void OnFolioRemovedFromFile(Kernel k, HugeFault.Fs.Inode inode, Folio folio)
    {
        if (!folio.IsHwpoison) return;
        k.DropMfRef(folio);
        if (k.Phys.Folios.ContainsKey(folio.Pfn) && folio.Flags.Has(PageFlags.HugetlbFreed)) k.ForceDissolve(k.HstateOf(folio), folio);
    }

    private static int _registered;

    /// <summary>Registers the policy once per test process (left out of the default lists so other tests see the built-in set).</summary>
    public static string Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 0)
            RecoveryPolicies.Register(PolicyName, "the baseline, but the poisoned page is freed (dissolved) when its owner exits", p => new FreeOnReleasePolicy(p), listed: false);
        return PolicyName;
    }
}

public class FleetPolicyPluginTests
{
    private static FleetConfig Busy(IReadOnlyList<string> policies, long servers = 3000) => new()
    {
        Servers = servers, Seed = 21, Faults = new FleetFaultConfig { FitScale = 8, DepositedPerServerYear = 0.5 }, Policies = policies,
    };

    [Fact]
    public void A_policy_defined_only_in_the_test_project_runs_in_the_fleet_and_its_results_follow_from_its_kernel_model()
    {
        string name = FreeOnReleasePolicy.Register();
        string baseline = RecoveryPolicies.Baseline;
        var r = FleetMonteCarlo.Run(Busy([baseline, name]), new FleetRunOptions(2, FleetShard.Whole));
        var t = r.Tally;
        // The kernel model says: the same unmapping and signals, so the same VMs die...
        Assert.Equal(t.Sum[0, (int)PolicyMetric.VmsKilled], t.Sum[1, (int)PolicyMetric.VmsKilled]);
        Assert.Equal(t.Sum[0, (int)PolicyMetric.GuestLostBytes], t.Sum[1, (int)PolicyMetric.GuestLostBytes]);
        // ...but the page is dissolved on release instead of kept: less capacity stranded.
        var effect = r.Model.Tables[1].First(EventClass.MappedId(PoisonKind.Permanent, false, true, false));
        Assert.Equal(FrameRelease.Dissolved, effect.Release);
        Assert.Equal(FrameRelease.Kept, r.Model.Tables[0].First(EventClass.MappedId(PoisonKind.Permanent, false, true, false)).Release);
        Assert.True(t.Sum[1, (int)PolicyMetric.StrandedPageHours] < t.Sum[0, (int)PolicyMetric.StrandedPageHours],
            $"stranded {t.Sum[1, (int)PolicyMetric.StrandedPageHours]} vs baseline {t.Sum[0, (int)PolicyMetric.StrandedPageHours]}");
    }

    [Fact]
    public void The_fleet_command_runs_a_registered_policy_named_in_its_config()
    {
        string name = FreeOnReleasePolicy.Register();
        // named in the study's file (the --policy flag lists the registry's default set)
        string dir = Path.Combine(Path.GetTempPath(), "hugefault-fleet-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string yaml = Path.Combine(dir, "plugin.yaml");
        File.WriteAllText(yaml, $"run:\n  policies: [{RecoveryPolicies.Baseline}, {name}]\n");
        var (exit, stdout, stderr) = HugeFault.Tests.Cli.CliProcess.InProcess("fleet", yaml, "--servers", "2000", "--seed", "4", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.True(doc.RootElement.GetProperty("policies").TryGetProperty(name, out _));
    }

    [Fact]
    public void Policies_that_share_a_run_get_exactly_the_results_they_get_alone()
    {
        // Policies whose effects agree on a server's events follow one run; that must not change anything.
        var all = RecoveryPolicies.Names;
        var together = FleetMonteCarlo.Run(Busy(all, 600), new FleetRunOptions(1, FleetShard.Whole)).Tally;
        for (int p = 0; p < all.Count; p++)
        {
            var alone = FleetMonteCarlo.Run(Busy([all[p]], 600), new FleetRunOptions(1, FleetShard.Whole)).Tally;
            for (int k = 0; k < ServerOutcome.PolicyMetrics; k++)
                Assert.True(together.Sum[p, k] == alone.Sum[0, k], $"{all[p]} {(PolicyMetric)k}: {together.Sum[p, k]} together, {alone.Sum[0, k]} alone");
            for (int b = 0; b < together.Bins; b++)
                Assert.True(together.Series[p, b] == alone.Series[0, b], $"{all[p]} month {b}: {together.Series[p, b]} together, {alone.Series[0, b]} alone");
        }
        Assert.True(together.Sum[0, (int)PolicyMetric.UeEvents] > 100);
    }
}

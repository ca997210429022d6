using HugeFault.Fleet;
using HugeFault.Reports;
using HugeFault.Scenarios;

namespace HugeFault.Reports.Tests;

/// <summary>One small comparison shared by the tests: three built-in scenarios, every policy, a small fleet and small sensitivity runs.</summary>
public static class Small
{
    private static readonly Lazy<CompareResult> Result = new(() =>
    {
        var names = new[] { "policies/shared-1g-error-in-middle.yaml", "policies/keep-mapped.yaml", "vm/vm-migrate-after-error-postcopy.yaml" };
        var scenarios = names.Select(BuiltinScenarios.Load).ToList();
        var policies = HugeFault.Policies.RecoveryPolicies.Names;
        var (rows, snaps) = CompareRunner.RunScenarios(scenarios, policies, snapshots: true, threads: 2);
        var cfg = new FleetConfig { Servers = 3000, Policies = policies.Where(p => FleetPolicies.TryParse(p, out _)).ToList() };
        var (fleet, bands) = FleetBatches.Run(cfg, 2, FleetShard.Whole, batches: 4);
        var sens = Sensitivity.Run(cfg, 600, 2, FleetSection.Report);
        return new CompareResult(scenarios, policies, rows, FleetSection.Report(fleet), bands, sens, snaps);
    });

    public static CompareResult Compare => Result.Value;
}

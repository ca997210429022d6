using HugeFault.Fleet;

namespace HugeFault.Reports.Tests;

public class FleetIntervalTests
{
    [Fact]
    public void A_100_server_fleet_reports_no_interval_below_zero()
    {
        var cfg = new FleetConfig { Servers = 100 };
        var report = FleetSection.Report(FleetMonteCarlo.Run(cfg, new FleetRunOptions(1, FleetShard.Whole)));
        Assert.All(report.Rows(), r => Assert.True(r.Value.Lower >= 0, $"{r.Policy} {r.Metric}: lower bound {r.Value.Lower}"));
        Assert.True(report.ServersWithUe.Lower >= 0);
        Assert.True(report.ServersWithUe.Upper <= 1);
        // the paired differences keep their sign-free normal interval
        Assert.Contains(report.Rows(), r => r.DiffVsMainline is { Lower: < 0 });
    }

    [Fact]
    public void Batches_merge_to_exactly_the_whole_run_and_give_positive_bands()
    {
        var cfg = new FleetConfig { Servers = 2000, Policies = ["mainline", "hgm"] };
        var whole = FleetMonteCarlo.Run(cfg, new FleetRunOptions(2, FleetShard.Whole));
        var (batched, bands) = FleetBatches.Run(cfg, 2, FleetShard.Whole, batches: 5);
        Assert.True(whole.Tally.SameAs(batched.Tally));
        for (int p = 0; p < 2; p++)
            for (int b = 0; b < whole.Tally.Bins; b++)
                Assert.True(bands.Lower[p, b] >= 0 && bands.Lower[p, b] <= bands.Mean[p, b] + 1e-9 && bands.Upper[p, b] >= bands.Mean[p, b] - 1e-9);
    }
}

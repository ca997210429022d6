using HugeFault.Fleet;
using HugeFault.Mm;

namespace HugeFault.Tests.Fleet;

/// <summary>
/// A host panic comes from the kernel model (a kernel-mode load of a poisoned line outside an MC-safe copy), never from a
/// policy's name: the probe host has every bad line of the event present from the start, so a design whose handling
/// copies the page with copy_to_user() (userspace-migrate's pread()) meets the lines nobody has reported yet.
/// </summary>
public class HostPanicTests
{
    private static readonly IReadOnlyDictionary<string, string> NoParams = new Dictionary<string, string>();

    [Fact]
    public void A_rescue_read_of_a_page_with_a_second_bad_page_panics_the_probe_host_and_one_bad_page_does_not()
    {
        var one = new ProbeHost("userspace-migrate", NoParams, mapped: true, spare: true, enlightened: false);
        Assert.False(one.Error((0, 0), PoisonKind.Permanent, consumed: true).Panicked);
        var two = new ProbeHost("userspace-migrate", NoParams, mapped: true, spare: true, enlightened: false);
        two.Poison([(7, 3)], PoisonKind.Permanent);
        Assert.True(two.Error((0, 0), PoisonKind.Permanent, consumed: true).Panicked);
        // the same two lines under the baseline: nothing copies the page, the second line stays latent
        var baseline = new ProbeHost("mainline", NoParams, mapped: true, spare: true, enlightened: false);
        baseline.Poison([(7, 3)], PoisonKind.Permanent);
        Assert.False(baseline.Error((0, 0), PoisonKind.Permanent, consumed: true).Panicked);
    }

    [Theory]
    [InlineData("userspace-migrate", false, true)]
    [InlineData("mainline", false, false)]
    [InlineData("hgm", false, false)]
    public void The_effect_table_says_which_event_sizes_panic(string policy, bool one, bool more)
    {
        var e = EffectTable.For(policy, NoParams).First(EventClass.MappedId(PoisonKind.Permanent, consumed: true, spare: true, enlightened: false));
        Assert.Equal(one, e.Panics(1));
        Assert.Equal(more, e.Panics(2));
    }

    [Fact]
    public void A_fleet_counts_host_panics_only_where_the_kernel_model_panicked_and_every_vm_of_the_host_dies()
    {
        var cfg = new FleetConfig
        {
            Servers = 2000, Seed = 5, Faults = new FleetFaultConfig { FitScale = 8 }, Policies = ["mainline", "userspace-migrate"],
        };
        var r = FleetMonteCarlo.Run(cfg, new FleetRunOptions(2, FleetShard.Whole));
        var t = r.Tally;
        long panics = (long)t.Sum[1, (int)PolicyMetric.HostPanics];
        Assert.Equal(0, (long)t.Sum[0, (int)PolicyMetric.HostPanics]);
        Assert.True(panics > 0, "a busy fleet has multi-page events on VM pages");
        // each panic kills at least the VM whose page the rescue was copying
        Assert.True((long)t.Sum[1, (int)PolicyMetric.VmsKilled] >= panics);
        var report = new FleetReport(new FleetContext(5, cfg.Servers, 1, r.Model.MeanConcurrentVms, "all", "", 0), t);
        var row = report.Rows().Single(x => x.Policy == "userspace-migrate" && x.Metric == "host_panics");
        Assert.Equal("per 1,000 server-years", row.Unit);
        Assert.Equal(panics * 1000.0 / cfg.Servers, row.Value.Mean, 9);
    }
}

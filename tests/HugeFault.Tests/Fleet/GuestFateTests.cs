using HugeFault.Fleet;
using HugeFault.Mm;
using HugeFault.Policies;
using HugeFault.Virt;

namespace HugeFault.Tests.Fleet;

/// <summary>
/// The fleet decides a VM's fate with the VM model's rules (<see cref="GuestFate"/>) on what the effect table says the
/// guest received. These tests replay the same events on the VM model itself (<see cref="Vm"/>, with its own guest
/// budget and guest-kernel pages) and require the same verdict, for every registered policy.
/// </summary>
public class GuestFateTests
{
    private static readonly IReadOnlyDictionary<string, string> NoParams = new Dictionary<string, string>();

    private static (int, int)[] Spread(int pages) => Enumerable.Range(0, pages).Select(i => (i * 512 / pages, 0)).ToArray();

    private static ProbeState Event(ProbeHost host, (int, int)[] spots, PoisonKind kind, bool consumed)
    {
        host.Poison(spots.AsSpan(1), kind);
        var s = host.Error(spots[0], kind, consumed);
        foreach (var spot in spots.Skip(1)) s = host.Error(spot, kind, false, poisoned: true);
        return s;
    }

    [Theory]
    [MemberData(nameof(EffectTableTests.AllPolicies), MemberType = typeof(EffectTableTests))]
    public void A_guest_dies_of_a_machine_check_storm_exactly_when_the_vm_model_says(string policy)
    {
        // A what-if budget of 4 machine checks (Linux has none: GuestConfig.MaxMces) keeps the events small.
        var guest = new GuestConfig { KernelFraction = 0, MaxMces = 4 };
        var fate = new GuestFate(new FleetGuestConfig { GuestKernelFraction = 0, MaxMces = 4 }, touchesPerLineHour: 0);
        var table = EffectTable.For(policy, NoParams);
        var e = table.First(EventClass.MappedId(PoisonKind.Permanent, false, true, false));
        foreach (int pages in new[] { 4, 5 })
        {
            var host = new ProbeHost(policy, NoParams, mapped: true, spare: true, enlightened: false, guest);
            Event(host, Spread(pages), PoisonKind.Permanent, consumed: false);
            bool fleetSaysDies = fate.Dies(e.GuestDied.At(pages, pages) > 0, e.Mces.At(pages, pages),
                e.UnknownLost.At(pages, pages), hot: 1, remainingHours: 1e9, u: 0.5);
            Assert.True(fleetSaysDies == !host.GuestAlive, $"{policy}, {pages} bad pages: fleet says {(fleetSaysDies ? "dies" : "lives")}, VM model {(host.GuestAlive ? "lives" : "panics")} ({host.Guest.PanicReason})");
        }
    }

    [Theory]
    [MemberData(nameof(EffectTableTests.AllPolicies), MemberType = typeof(EffectTableTests))]
    public void A_machine_check_on_guest_kernel_memory_is_fatal_whether_consumed_or_found_by_the_scrub(string policy)
    {
        // Every guest page holds guest-kernel memory: an action-required machine check panics the guest (consumed in kernel
        // context) and so does an optional one (the page is unhandlable to the guest's memory_failure(); the guest kernel reads
        // it next). A policy that delivers no machine check (a repaired line) leaves the guest alive; both models must agree.
        var guest = new GuestConfig { KernelFraction = 1 };
        var fate = new GuestFate(new FleetGuestConfig { GuestKernelFraction = 1 }, touchesPerLineHour: 0);
        var table = EffectTable.For(policy, NoParams);
        foreach (bool consumed in new[] { false, true })
        {
            var e = table.First(EventClass.MappedId(PoisonKind.Permanent, consumed, true, false));
            var host = new ProbeHost(policy, NoParams, mapped: true, spare: true, enlightened: false, guest);
            host.Error((0, 0), PoisonKind.Permanent, consumed);
            bool dies = fate.Dies(e.GuestDied.At(1, 1) > 0, e.Mces.At(1, 1), e.UnknownLost.At(1, 1), 1, 1e9, u: 0.5);
            Assert.True(dies == !host.GuestAlive, $"{policy}, {(consumed ? "consumed" : "scrubbed")}: fleet says {(dies ? "dies" : "lives")}, VM model {(host.GuestAlive ? "lives" : "panics")}");
        }
    }

    [Theory]
    [InlineData(0.1, 0.0, 32)]  // what-if budget 32 in 60 s: at 600 touches a minute the 33rd machine check panics the guest
    [InlineData(10.0, 0.0, -1)] // 6 a minute: never
    [InlineData(10.0, 1.0, 0)]  // every page is guest-kernel memory: the event's own (action optional) machine check
    public void A_guest_that_keeps_touching_memory_the_host_took_dies_after_as_many_touches_as_the_vm_model_says(double secondsApart, double kernelFraction, int expected)
    {
        // The baseline unmaps the whole gigabyte and tells the guest about one page (scenarios/vm/vm-keeps-touching-lost-gigabyte.yaml).
        string policy = RecoveryPolicies.Baseline;
        var e = EffectTable.For(policy, NoParams).First(EventClass.MappedId(PoisonKind.Permanent, false, true, false));
        Assert.True(e.UnknownLost.At(1, 1) > 0);
        var guest = new GuestConfig { KernelFraction = kernelFraction, MaxMces = 32, MceWindowNs = 60_000_000_000 };
        var host = new ProbeHost(policy, NoParams, mapped: true, spare: true, enlightened: false, guest);
        host.Error((0, 0), PoisonKind.Permanent, false);
        int touches = 0;
        for (int i = 1; i <= 64 && host.GuestAlive; i++)
        {
            host.Guest.Host.Advance((long)(secondsApart * 1e9));
            host.Guest.GuestAccess(0, (ulong)(i * 7 % 512) * Units.PMD_SIZE + (ulong)i * Units.PAGE_SIZE, 8, write: false);
            touches = i;
        }
        int vmModel = host.GuestAlive ? -1 : touches; // −1: survives every touch
        var fate = new GuestFate(new FleetGuestConfig { GuestKernelFraction = kernelFraction, MaxMces = 32, MceWindowSeconds = 60 }, touchesPerLineHour: 1);
        double fleet = fate.TouchesToDeath(e.Mces.At(1, 1), touchesPerWindow: 60 / secondsApart, kernelHit: fate.KernelHit(0.5));
        Assert.Equal(expected, vmModel);
        Assert.Equal(expected < 0 ? double.PositiveInfinity : expected, fleet);
    }

    [Fact]
    public void The_guest_kernel_page_index_is_geometric_in_the_sites_uniform()
    {
        var fate = new GuestFate(new FleetGuestConfig { GuestKernelFraction = 0.05 }, 1);
        // K = 1 exactly when u < f, and P(K > k) = (1 − f)^k.
        Assert.Equal(1, fate.KernelHit(0.049));
        Assert.Equal(2, fate.KernelHit(0.051));
        var rng = HugeFault.Simulation.Xoshiro256StarStar.Create(5);
        int n = 200_000, over10 = 0;
        for (int i = 0; i < n; i++) if (fate.KernelHit(rng.NextDouble()) > 10) over10++;
        Assert.InRange(over10 / (double)n, Math.Pow(0.95, 10) - 0.005, Math.Pow(0.95, 10) + 0.005);
        Assert.Equal(double.PositiveInfinity, new GuestFate(new FleetGuestConfig { GuestKernelFraction = 0 }, 1).KernelHit(0.3));
    }
}

using HugeFault.Fleet;
using HugeFault.Mm;
using HugeFault.Policies;
using HugeFault.Simulation;

namespace HugeFault.Tests.Fleet;

/// <summary>
/// The fleet's fast per-event table (<see cref="FleetPolicies.Resolve"/>) must give the same kernel-level outcome as
/// the kernel model (HugeFault.Kernel, the code the scenarios run) on sampled UE events: the SIGBUS the consuming
/// mapper receives (si_addr_lsb), what part of the 1 GiB mapping becomes inaccessible, whether the mapper survives, and
/// what stays quarantined once the owner exits. The test covers every policy the kernel model registers
/// (<see cref="RecoveryPolicies.Names"/>) that the fleet also knows, so policies added to the kernel model are checked
/// automatically.
/// </summary>
public class FleetKernelCrossCheckTests
{
    private const ulong GiB = 1UL << 30;

    public static TheoryData<string> SharedPolicies()
    {
        var data = new TheoryData<string>();
        foreach (var name in RecoveryPolicies.Names.Intersect(FleetPolicies.Names)) data.Add(name);
        return data;
    }

    /// <summary>A sampled UE event: the kind of poison, the line within the page, free or mapped page, consumed or scrubbed.</summary>
    private readonly record struct SampledEvent(PoisonKind Kind, ulong Offset, bool Mapped, bool Consumed);

    private static IEnumerable<SampledEvent> Sample(int count, ulong seed)
    {
        var rng = Xoshiro256StarStar.Create(seed);
        for (int i = 0; i < count; i++)
        {
            var kind = (PoisonKind)rng.NextBounded(3);
            ulong offset = (rng.NextUInt64() % GiB) & ~63UL;
            bool mapped = rng.NextBounded(4) != 0;
            bool consumed = mapped && rng.NextBounded(2) == 0;
            yield return new SampledEvent(kind, offset, mapped, consumed);
        }
    }

    [Fact]
    public void Today_at_least_mainline_is_cross_checked()
    {
        Assert.Contains("mainline", RecoveryPolicies.Names.Intersect(FleetPolicies.Names));
    }

    /// <summary>Events sampled from a real fleet run (busy fleet, first events on free or mapped 1 GiB pages with one bad 4 KiB page).</summary>
    private static readonly Lazy<List<SampledEvent>> FleetSample = new(() => SampleFleet(12));

    private static IEnumerable<SampledEvent> FromFleet(int count) => FleetSample.Value.Take(count);

    private static List<SampledEvent> SampleFleet(int count)
    {
        var cfg = new FleetConfig { Servers = 20_000, Seed = 17, Faults = new FleetFaultConfig { FitScale = 8, DepositedPerServerYear = 0.5 }, Policies = ["mainline"] };
        var sim = new FleetServerSimulator(new FleetModel(cfg));
        var picked = new List<SampledEvent>();
        sim.Observer = e =>
        {
            if (picked.Count < count && e.BadPages == 1 && e.Use is FleetFrameUse.FreeHuge or FleetFrameUse.MappedHuge &&
                !picked.Any(p => p.Mapped == (e.Use == FleetFrameUse.MappedHuge) && p.Consumed == e.Consumed && p.Kind == e.Kind))
                picked.Add(new SampledEvent(e.Kind, (ulong)e.Offset & ~63UL, e.Use == FleetFrameUse.MappedHuge, e.Consumed));
        };
        for (long i = 0; i < cfg.Servers && picked.Count < count; i++) sim.Simulate(i);
        return picked;
    }

    [Fact]
    public void The_fleet_produces_every_kind_of_event_the_cross_check_needs()
    {
        var events = FromFleet(12).ToList();
        Assert.Contains(events, e => e.Mapped && e.Consumed);
        Assert.Contains(events, e => e.Mapped && !e.Consumed);
        Assert.Contains(events, e => !e.Mapped);
        Assert.Contains(events, e => e.Kind == PoisonKind.Permanent);
        Assert.Contains(events, e => e.Kind != PoisonKind.Permanent);
    }

    [Theory]
    [MemberData(nameof(SharedPolicies))]
    public void Events_sampled_from_a_fleet_run_give_the_same_outcome_in_the_fast_path_and_the_kernel_model(string policyName)
    {
        Assert.True(FleetPolicies.TryParse(policyName, out var policy));
        foreach (var ev in FromFleet(12))
        {
            var expected = FleetPolicies.Resolve(policy, ev.Mapped ? FrameUse.MappedHuge : FrameUse.FreeHuge, ev.Kind, badPages: 1,
                repairAccepted: true, freeHugePage: true);
            var observed = RunOnKernel(policyName, ev, expected);
            Assert.True(observed.Matches, $"{policyName} {ev}: fast path {expected} but kernel model {observed.Detail}");
        }
    }

    [Theory]
    [MemberData(nameof(SharedPolicies))]
    public void Random_events_give_the_same_outcome_in_the_fast_path_and_the_kernel_model(string policyName)
    {
        Assert.True(FleetPolicies.TryParse(policyName, out var policy));
        foreach (var ev in Sample(12, seed: 20261125))
        {
            var expected = FleetPolicies.Resolve(policy, ev.Mapped ? FrameUse.MappedHuge : FrameUse.FreeHuge, ev.Kind, badPages: 1,
                repairAccepted: true, freeHugePage: true);
            var observed = RunOnKernel(policyName, ev, expected);
            Assert.True(observed.Matches, $"{policyName} {ev}: fast path {expected} but kernel model {observed.Detail}");
        }
    }

    private sealed record Observation(bool Matches, string Detail);

    /// <summary>Builds a small host (2 × 1 GiB pool pages, a VMM with a 1 GiB memfd), injects the event, probes the mapping, exits the VMM.</summary>
    private static Observation RunOnKernel(string policy, SampledEvent ev, KernelEffect fx)
    {
        var k = new Kernel(new KernelConfig { MemoryBytes = 4 * GiB, HugePages1G = 2, Policy = policy });
        var vmm = k.Spawn("qemu");
        int fd = (int)k.MemfdCreate(vmm, "guest", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        Assert.False(k.Ftruncate(vmm, fd, (long)GiB).Failed);
        ulong va = (ulong)k.Mmap(vmm, GiB, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "guest").Ret;
        long poolBefore = k.H1G.nr_huge_pages;
        Folio target;
        if (ev.Mapped)
        {
            Assert.Equal("ok", k.Access(vmm, va, 64, write: true, seed: 1).Outcome);
            target = k.Phys.Folios.Values.Single(f => f.IsHugetlb && f.Mapped);
        }
        else target = k.Phys.Folios.Values.First(f => f.IsHugetlb && f.Flags.Has(PageFlags.HugetlbFreed));
        ulong pa = target.PhysAddr + ev.Offset;
        k.Phys.PoisonLine(pa, ev.Kind);
        int signalsBefore = k.Trace.OfType<SignalEvent>().Count();
        if (ev.Consumed) k.Access(vmm, va + ev.Offset, 64, write: false);
        else k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);

        var detail = new List<string>();
        bool ok = true;
        if (ev.Consumed)
        {
            var sig = k.Trace.OfType<SignalEvent>().Skip(signalsBefore).FirstOrDefault(s => s.SiCode == Sig.BUS_MCEERR_AR);
            int lsb = sig?.SiAddrLsb ?? 0;
            detail.Add($"si_addr_lsb={lsb}");
            if (fx.Fate != FrameFate.Repaired && lsb != fx.SignalLsb) ok = false;
        }
        if (ev.Mapped && fx.Fate != FrameFate.Repaired && fx.Fate != FrameFate.MovedTo4K && fx.Fate != FrameFate.CopiedAway)
        {
            // A page far from the error in the same 1 GiB: lost only when the whole huge page is.
            ulong far = (ev.Offset + GiB / 2) % GiB & ~4095UL;
            bool farLost = k.Access(vmm, va + far, 8, write: false).Outcome.StartsWith("SIGBUS", StringComparison.Ordinal);
            detail.Add($"far page lost={farLost}");
            if (farLost != (fx.InaccessibleBytes >= (long)GiB)) ok = false;
        }
        detail.Add($"alive={vmm.Alive}");
        if (!vmm.Alive) ok = false; // the VMM handles SIGBUS; VM death is a guest-level decision layered on top
        // The owner frees the memory (the VM ends): unmap and truncate the memfd, then exit.
        k.Munmap(vmm, va, GiB);
        k.Ftruncate(vmm, fd, 0);
        k.DoExit(vmm, "VM shut down");
        // Quarantined raw pages: dissolved ones (buddy) plus the raw-error records of a poisoned huge page the model keeps.
        var poisonedHuge = k.Phys.Folios.Values.Where(f => f.IsHugetlb && f.IsHwpoison).ToList();
        int raw = k.Phys.RawHwpoisonPages.Count + poisonedHuge.Sum(f => f.RawHwp.Count);
        // 1 GiB pages no longer usable as such: dissolved out of the pool, or still flagged hwpoison.
        long lostPool = poolBefore - k.H1G.nr_huge_pages + poisonedHuge.Count;
        detail.Add($"raw quarantined={raw}, 1 GiB pages unusable={lostPool}");
        bool expectQuarantine = fx.Fate != FrameFate.Repaired;
        if ((raw == 1) != expectQuarantine || (lostPool == 1) != expectQuarantine) ok = false;
        return new Observation(ok, string.Join(", ", detail));
    }
}

using HugeFault.Fleet;
using HugeFault.Mm;
using HugeFault.Policies;
using HugeFault.Virt;

namespace HugeFault.Tests.Fleet;

/// <summary>
/// The fleet's per-event effects come from each policy's kernel model (<see cref="EffectTable"/>), measured on a few
/// bad lines and scaled to an event's size. These tests run sampled fleet events exactly on the kernel and VM models
/// (every bad line of the event, all present before the first is handled) and require the table's scaled answer, so
/// what they check is the scaling and the shortcuts (deposited asked as transient, an untouched spare page, later errors
/// read off the first ones), not the derivation against itself. Every registered policy is covered.
/// </summary>
public class EffectTableTests
{
    private static readonly IReadOnlyDictionary<string, string> NoParams = new Dictionary<string, string>();

    /// <summary>Every registered policy (the theories of this file and <see cref="GuestFateTests"/>).</summary>
    public static TheoryData<string> AllPolicies()
    {
        var d = new TheoryData<string>();
        foreach (var p in RecoveryPolicies.Names) d.Add(p);
        return d;
    }

    private readonly record struct Sample(bool Mapped, PoisonKind Kind, bool Consumed, bool Enlightened, int Pages, int Regions);

    /// <summary>First errors on healthy pages seen in a busy fleet run (one per class and small size), plus sizes spread over regions.</summary>
    private static readonly Lazy<List<Sample>> FleetSamples = new(() =>
    {
        var cfg = new FleetConfig { Servers = 20_000, Seed = 17, Faults = new FleetFaultConfig { FitScale = 8, DepositedPerServerYear = 0.5 }, Policies = ["mainline"] };
        var sim = new FleetServerSimulator(new FleetModel(cfg));
        var picked = new List<Sample>();
        sim.Observer = e =>
        {
            if (e.Use is not (FleetFrameUse.FreeHuge or FleetFrameUse.MappedHuge) || e.BadPages > 16) return;
            var s = new Sample(e.Use == FleetFrameUse.MappedHuge, e.Kind, e.Consumed, picked.Count % 2 == 1, (int)e.BadPages, (int)e.Regions);
            if (!picked.Any(p => p with { Enlightened = false } == s with { Enlightened = false })) picked.Add(s);
        };
        for (long i = 0; i < cfg.Servers && picked.Count < 10; i++) sim.Simulate(i);
        picked.Add(new Sample(true, PoisonKind.Permanent, false, false, 4, 4));
        picked.Add(new Sample(true, PoisonKind.Transient, true, true, 8, 2));
        return picked;
    });

    [Fact]
    public void Event_class_ids_are_a_bijection()
    {
        var seen = new HashSet<int>();
        foreach (bool mapped in new[] { false, true })
        foreach (var kind in Enum.GetValues<PoisonKind>())
        foreach (bool consumed in new[] { false, true })
        foreach (bool spare in new[] { false, true })
        foreach (bool enlightened in new[] { false, true })
        {
            var c = new EventClass(mapped, kind, consumed, spare, enlightened);
            Assert.InRange(c.Id, 0, EventClass.Count - 1);
            Assert.True(seen.Add(c.Id));
            Assert.Equal(c, EventClass.FromId(c.Id));
            if (mapped) Assert.Equal(c.Id, EventClass.MappedId(kind, consumed, spare, enlightened));
            else if (!consumed && !enlightened) Assert.Equal(c.Id, EventClass.FreeId(kind, spare));
        }
    }

    [Fact]
    public void The_fleet_produces_the_kinds_of_event_the_checks_need()
    {
        var s = FleetSamples.Value;
        Assert.Contains(s, e => e.Mapped && e.Consumed);
        Assert.Contains(s, e => e.Mapped && !e.Consumed);
        Assert.Contains(s, e => !e.Mapped);
        Assert.Contains(s, e => e.Kind == PoisonKind.Permanent);
        Assert.Contains(s, e => e.Kind == PoisonKind.Deposited);
        Assert.Contains(s, e => e.Pages > 1);
    }

    /// <summary>(region, page) spots of <paramref name="pages"/> bad pages spread evenly over <paramref name="regions"/> 2 MiB regions.</summary>
    private static (int, int)[] Spots(int pages, int regions, int regionOffset = 0)
    {
        int per = pages / regions;
        return Enumerable.Range(0, regions).SelectMany(r => Enumerable.Range(0, per).Select(j => ((r * 512 / regions + regionOffset) % 512, j * 512 / per))).ToArray();
    }

    /// <summary>Every line of the event bad first, then each reaches the kernel (the first read by a vCPU if consumed).</summary>
    private static ProbeState Exact(ProbeHost host, (int, int)[] spots, PoisonKind kind, bool consumed)
    {
        host.Poison(spots.AsSpan(1), kind);
        var s = host.Error(spots[0], kind, consumed);
        foreach (var spot in spots.Skip(1)) s = host.Error(spot, kind, false, poisoned: true);
        return s;
    }

    private static void Same(string what, EventEffect e, ProbeState before, ProbeState after, int pages, int regions)
    {
        Assert.True(e.GuestLost.At(pages, regions) == after.GuestLost - before.GuestLost, $"{what}: guest lost {e.GuestLost} vs kernel {after.GuestLost - before.GuestLost}");
        Assert.True(e.UnknownLost.At(pages, regions) == after.UnknownLost - before.UnknownLost, $"{what}: unknown lost {e.UnknownLost} vs kernel {after.UnknownLost - before.UnknownLost}");
        Assert.True(e.Stranded.At(pages, regions) == after.Stranded - before.Stranded, $"{what}: stranded {e.Stranded} vs kernel {after.Stranded - before.Stranded}");
        Assert.True(e.PageTables.At(pages, regions) == after.PageTables - before.PageTables, $"{what}: page tables {e.PageTables} vs kernel {after.PageTables - before.PageTables}");
        Assert.True(e.Mces.At(pages, regions) == after.Mces - before.Mces, $"{what}: machine checks {e.Mces} vs kernel {after.Mces - before.Mces}");
        Assert.True(e.ActionRequired.At(pages, regions) == after.ActionRequired - before.ActionRequired, $"{what}: action required {e.ActionRequired} vs kernel {after.ActionRequired - before.ActionRequired}");
    }

    [Theory]
    [MemberData(nameof(AllPolicies))]
    public void First_errors_sampled_from_a_fleet_run_give_the_kernel_models_answer_at_their_size(string policy)
    {
        var table = EffectTable.For(policy, NoParams);
        foreach (var s in FleetSamples.Value)
        {
            int id = s.Mapped ? EventClass.MappedId(s.Kind, s.Consumed, true, s.Enlightened) : EventClass.FreeId(s.Kind, true);
            var e = table.First(id);
            var host = new ProbeHost(policy, NoParams, s.Mapped, spare: true, s.Enlightened);
            var before = host.Before;
            var after = Exact(host, Spots(s.Pages, s.Regions), s.Kind, s.Consumed && s.Mapped);
            string what = $"{policy}, {EventClass.FromId(id)}, {s.Pages} pages in {s.Regions} regions";
            Same(what, e, before, after, s.Pages, s.Regions);
            if (s.Mapped) Assert.True(e.Backing == host.Backing(), $"{what}: backing {e.Backing} vs kernel {host.Backing()}");
        }
    }

    [Theory]
    [MemberData(nameof(AllPolicies))]
    public void Later_errors_on_a_held_page_and_its_release_give_the_kernel_models_answer(string policy)
    {
        var table = EffectTable.For(policy, NoParams);
        foreach (var (firstKind, firstConsumed, laterKind, laterConsumed) in new[]
                 { (PoisonKind.Permanent, false, PoisonKind.Permanent, true), (PoisonKind.Transient, true, PoisonKind.Permanent, false), (PoisonKind.Permanent, false, PoisonKind.Deposited, false) })
        {
            int held = EventClass.MappedId(firstKind, firstConsumed, true, false);
            var first = table.First(held);
            if (first.Repaired || first.Backing is not (FrameBacking.SamePage or FrameBacking.Unreachable)) continue;
            var later = table.Further(held, EventClass.MappedId(laterKind, laterConsumed, true, false));
            var host = new ProbeHost(policy, NoParams, mapped: true, spare: true, enlightened: false);
            host.Error((0, 0), firstKind, firstConsumed);
            var before = host.Current;
            var after = Exact(host, Spots(4, 2, regionOffset: 100), laterKind, laterConsumed);
            Same($"{policy}: {laterKind} {(laterConsumed ? "read" : "scrubbed")} after {firstKind} {(firstConsumed ? "read" : "scrubbed")}", later, before, after, 4, 2);
            Assert.Equal(first.Release, host.Release());
        }
    }

    [Theory]
    [MemberData(nameof(AllPolicies))]
    public void Deposited_poison_is_handled_like_transient_poison(string policy)
    {
        // The table asks about deposited poison as transient; the kernel model must keep treating them alike.
        foreach (bool mapped in new[] { true, false })
        foreach (bool consumed in mapped ? new[] { false, true } : new[] { false })
        {
            var a = new ProbeHost(policy, NoParams, mapped, true, false);
            var b = new ProbeHost(policy, NoParams, mapped, true, false);
            var x = Exact(a, Spots(2, 2), PoisonKind.Transient, consumed);
            var y = Exact(b, Spots(2, 2), PoisonKind.Deposited, consumed);
            Assert.Equal(x, y);
        }
    }

    [Theory]
    [MemberData(nameof(AllPolicies))]
    public void A_spare_page_the_kernel_left_alone_makes_no_difference(string policy)
    {
        foreach (var kind in new[] { PoisonKind.Permanent, PoisonKind.Transient })
        {
            var with = new ProbeHost(policy, NoParams, mapped: true, spare: true, enlightened: false);
            var without = new ProbeHost(policy, NoParams, mapped: true, spare: false, enlightened: false);
            var x = Exact(with, Spots(2, 2), kind, false);
            var y = Exact(without, Spots(2, 2), kind, false);
            if (with.SpareUntouched) Assert.Equal(x, y);
            var table = EffectTable.For(policy, NoParams);
            if (with.SpareUntouched)
                Assert.Equal(table.First(EventClass.MappedId(kind, false, true, false)).Trajectory, table.First(EventClass.MappedId(kind, false, false, false)).Trajectory);
        }
    }
}

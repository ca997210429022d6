using CsCheck;
using HugeFault.Tests.Properties;
using HugeFault.Mm;
using HugeFault.Policies;

namespace HugeFault.Tests.Policies;

/// <summary>Invariants every recovery policy must keep, over random sequences of accesses and errors.</summary>
public class PolicyProperties
{
    private const ulong G = 1UL << 30;

    /// <summary>One random action: kind, which process, offset in the 2 GiB shared file.</summary>
    private static readonly Gen<(int Kind, int Proc, ulong Off)> Action =
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 1], Gen.ULong[0, 2 * G - 64], (k, p, o) => (k, p, o & ~63UL));

    private sealed class World
    {
        public readonly Kernel K;
        public readonly TaskStruct[] P = new TaskStruct[2];
        public readonly ulong[] Va = new ulong[2];
        public readonly ulong Seed = ContentTag.PatternSeed("p1");

        public World(string policy)
        {
            K = new Kernel(new KernelConfig { MemoryBytes = 8 * G, HugePages1G = 3, Policy = policy });
            P[0] = K.Spawn("A");
            int fd = (int)K.MemfdCreate(P[0], "shared", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
            K.Ftruncate(P[0], fd, (long)(2 * G));
            P[1] = K.Fork(P[0], "B");
            for (int i = 0; i < 2; i++) Va[i] = (ulong)K.Mmap(P[i], 2 * G, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, i == 0 ? "a" : "b").Ret;
            K.Access(P[0], Va[0], 2 * G, write: true, Seed, 0);
        }
    }

    private static void Step(World w, (int Kind, int Proc, ulong Off) a)
    {
        var k = w.K; var t = w.P[a.Proc]; ulong va = w.Va[a.Proc] + a.Off;
        if (!t.Alive) return;
        switch (a.Kind)
        {
            case 0: // a hardware error consumed by this process
            case 1: // a hardware error found by patrol scrub
            {
                var r = k.Walk(t.Mm, va);
                if (!r.Entry.Present) return;
                ulong pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (va - r.Va);
                k.Phys.PoisonLine(pa, a.Off % 3 == 0 ? PoisonKind.Transient : PoisonKind.Permanent);
                if (a.Kind == 0) k.Access(t, va, 64, write: false);
                else k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
                return;
            }
            case 2: // a load, checked against the data written
            {
                var check = new ContentCheck(w.Seed, (long)a.Off);
                var r = k.Access(t, va, 1 << 16, write: false, check: check);
                // whatever the policy, a load that got data got the right data: never poisoned or silently zeroed content
                // (repair zeroes the repaired line on purpose: those lines are excluded by re-writing them below)
                // (repair zeroes the repaired line, userspace-migrate's hole punch zeroes other mappers' view: both are
                // counted as data lost by the kernel model, and only then may data differ)
                Assert.True(check.Mismatches == 0 || k.Stats.BytesZeroed > 0 || k.Stats.GoodDataDroppedBytes > 0, $"{k.Policy.Name}: load at +{a.Off:x} returned {check.Mismatches} wrong lines");
                // and a completed load never covered a poisoned line the hardware would have signalled
                if (r.Outcome == "ok") Assert.Null(FirstPoisonUnder(k, t, va, 1 << 16));
                return;
            }
            case 3: k.Madvise(t, Units.AlignDown(va, Units.PAGE_SIZE), 4096, Mman.MADV_HWPOISON); return;
            default: k.Access(t, va, 4096, write: false); return;
        }
    }

    private static ulong? FirstPoisonUnder(Kernel k, TaskStruct t, ulong va, ulong len)
    {
        for (ulong a = va; a < va + len; a += 64)
        {
            var r = k.Walk(t.Mm, a);
            if (!r.Entry.Present) continue;
            ulong pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (a - r.Va);
            if (k.Phys.LinePoison(pa) is not null) return pa;
        }
        return null;
    }

    /// <summary>Every present leaf maps a live folio whose rmap includes the VMA, and mapcounts add up.</summary>
    internal static void AssertRmapAgrees(Kernel k)
    {
        var seen = new Dictionary<Folio, int>();
        foreach (var mm in k.Tasks.Where(t => t.Alive).Select(t => t.Mm).Distinct())
            foreach (var v in mm.Vmas)
                k.ForEachLeaf(mm, v.Start, v.End, r =>
                {
                    var e = r.Entry;
                    if (!e.Present) return;
                    var f = k.Phys.FolioOf(e.Pfn);
                    Assert.NotNull(f);
                    Assert.False(f!.Flags.Has(PageFlags.HugetlbFreed), "a mapped folio is on the free list");
                    var owners = f.IsAnon ? f.AnonVma!.Vmas : f.Mapping!.IMmap;
                    Assert.Contains(v, owners);
                    seen[f] = seen.GetValueOrDefault(f) + 1;
                });
        foreach (var (f, n) in seen) Assert.Equal(f.Mapcount, n);
    }

    public static TheoryData<string> Policies()
    {
        var d = new TheoryData<string>();
        foreach (var p in RecoveryPolicies.Names) d.Add(p);
        return d;
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void No_load_returns_wrong_data_and_page_tables_agree_with_the_rmap(string policy)
    {
        Pbt.Run(Action.Array[1, 8], actions =>
        {
            var w = new World(policy);
            foreach (var a in actions)
            {
                Step(w, a);
                AssertRmapAgrees(w.K);
            }
        }, iter: 6, stream: 33);
    }

    [Theory]
    [InlineData("hgm")]
    [InlineData("hgm-full-split")]
    [InlineData("vma-convert")]
    [InlineData("keep-mapped")]
    public void High_granularity_policies_make_exactly_the_poisoned_4K_pages_inaccessible(string policy)
    {
        Pbt.Run(Gen.ULong[0, 2 * G - 64].Array[1, 6], offs =>
        {
            var w = new World(policy);
            foreach (var o in offs)
            {
                var r = w.K.Walk(w.P[0].Mm, w.Va[0] + o);
                if (!r.Entry.Present && !r.Entry.IsHwpoison) continue;
                ulong pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (w.Va[0] + o - r.Va);
                w.K.Phys.PoisonLine(pa & ~63UL, PoisonKind.Permanent);
                w.K.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
            }
            long distinctPages = offs.Select(o => o >> 12).Distinct().Count();
            var (bytes, _) = HugeFault.Scenarios.Comparison.Inaccessible(w.K);
            Assert.Equal(2 * distinctPages * 4096, bytes); // two mappers, 4 KiB each per poisoned page
        }, iter: 6, stream: 34);
    }

    [Fact]
    public void Mainline_makes_every_poisoned_gigabyte_inaccessible_to_both_mappers()
    {
        Pbt.Run(Gen.ULong[0, 2 * G - 64].Array[1, 4], offs =>
        {
            var w = new World("mainline");
            foreach (var o in offs)
            {
                var r = w.K.Walk(w.P[0].Mm, w.Va[0] + o);
                if (!r.Entry.Present && !r.Entry.IsHwpoison) continue;
                ulong pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (w.Va[0] + o - r.Va);
                w.K.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
            }
            long folios = offs.Select(o => o >> 30).Distinct().Count();
            Assert.Equal(2 * folios * (long)G, HugeFault.Scenarios.Comparison.Inaccessible(w.K).Bytes);
        }, iter: 10, stream: 35);
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void Page_table_pages_are_all_freed_when_every_process_exits(string policy)
    {
        Pbt.Run(Action.Array[0, 6], actions =>
        {
            var w = new World(policy);
            foreach (var a in actions) Step(w, a);
            foreach (var t in w.P) w.K.DoExit(t, "test");
            Assert.Equal(0, w.K.Stats.TablePagesNow);
            Assert.Equal(w.K.Stats.TablePagesAllocated, w.K.Stats.TablePagesFreed);
        }, iter: 4, stream: 36);
    }
}

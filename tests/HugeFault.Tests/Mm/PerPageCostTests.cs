using CsCheck;
using HugeFault.Mm;
using HugeFault.Tests.Properties;
using HugeFault.Virt;

namespace HugeFault.Tests.Mm;

/// <summary>
/// The model's cost per 4 KiB page of a VM on order-0 pages (issue 12: "a valid 16 GiB VM on 4 KiB pages needs 4.2 GB"),
/// and the compact forms that keep it small: the page cache as an xarray of 64-slot leaves, a folio's one-extent
/// content kept inline, page-table pages whose folio objects are made only when asked for.
/// </summary>
public class PerPageCostTests
{
    /// <summary>Bytes the model allocates per guest page to create and populate (write every page of) a VM on 4 KiB pages.</summary>
    private static double AllocatedBytesPerPage(ulong ram)
    {
        var k = new Kernel(new KernelConfig { MemoryBytes = 2 * Units.GiB, Policy = "mainline" });
        long before = GC.GetAllocatedBytesForCurrentThread();
        var vm = new Vm(k, "v", ram, Units.PAGE_SIZE, 1, new GuestConfig { KernelFraction = 0 }, new Version(10, 0));
        var r = k.Access(vm.Vmm, vm.RamHva, ram, write: true, ContentTag.PatternSeed("guest"), 0);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal("ok", r.Outcome);
        Assert.Equal((int)(ram >> Units.PAGE_SHIFT), vm.Ram.PageCache.Count);
        GC.KeepAlive(vm);
        return (double)bytes / (ram >> Units.PAGE_SHIFT);
    }

    [Fact]
    public void A_populated_VM_on_4K_pages_costs_a_bounded_number_of_bytes_per_page()
    {
        AllocatedBytesPerPage(8 * Units.MiB); // the code paths compiled, their statics made
        double perPage = AllocatedBytesPerPage(256 * Units.MiB); // 65,536 pages
        // a folio (88 B), its one-extent content (56 B), an xarray slot, an order-0 slot, a PTE: about 170 B; the
        // model before (a search-tree node per page-cache entry, a list per content map, hwpoison fields on every
        // folio) allocated about 350 B
        Assert.True(perPage < 200, $"{perPage:0} bytes allocated per 4 KiB guest page (bound 200)");
    }

    public readonly record struct XaOp(int Kind, ulong Index);

    private static readonly Gen<XaOp[]> XaOps =
        (from k in Gen.Int[0, 5] from i in Gen.OneOf(Gen.ULong[0, 200], Gen.ULong[0, 1UL << 40]) select new XaOp(k, i)).Array[1, 300];

    [Fact]
    public void The_page_cache_xarray_behaves_like_a_sorted_dictionary()
    {
        Pbt.Run(XaOps, ops =>
        {
            var xa = new PageCacheXArray();
            var rf = new SortedDictionary<ulong, Folio>();
            foreach (var op in ops)
            {
                ulong idx = op.Kind == 5 && rf.Count > 0 ? rf.Keys.ElementAt((int)(op.Index % (ulong)rf.Count)) : op.Index;
                switch (op.Kind)
                {
                    case 0 or 1 or 2: var f = new Folio(idx & 0xFFFFFFF, 0); xa[idx] = f; rf[idx] = f; break;
                    default: Assert.Equal(rf.Remove(idx), xa.Remove(idx)); break;
                }
                Assert.Equal(rf.Count, xa.Count);
                Assert.Equal(rf.TryGetValue(op.Index, out var a), xa.TryGetValue(op.Index, out var b));
                Assert.Same(a, b);
                Assert.Equal(rf.ContainsKey(idx), xa.ContainsKey(idx));
            }
            Assert.Equal(rf.Keys, xa.Keys);
            Assert.Equal(rf.Values, xa.Values);
            if (rf.Count > 0)
                Assert.Throws<InvalidOperationException>(() => { foreach (var kv in xa) xa.Remove(kv.Key); });
        }, iter: 60, stream: 1003, print: ops => string.Join(" ", ops.Select(o => $"{o.Kind}:{o.Index}")));
    }

    public readonly record struct CmOp(int Kind, uint Start, uint Len, int Seed);

    private static readonly Gen<CmOp[]> CmOps =
        (from k in Gen.Int[0, 4] from s in Gen.UInt[0, 63 * 64] from l in Gen.UInt[1, 700] from p in Gen.Int[0, 2] select new CmOp(k, s, l, p)).Array[1, 40];

    [Fact]
    public void A_content_map_reads_like_one_tag_per_line()
    {
        // the reference: every line's tag, rewritten by the same rules (a whole line takes the pattern's tag, a partial
        // one is read and mixed), compared after every step; the map keeps its first extent inline
        Pbt.Run(CmOps, ops =>
        {
            const uint lines = 64;
            var map = new ContentMap();
            var tags = new ulong[lines];
            foreach (var op in ops)
            {
                ulong off = op.Start % (lines * 64), len = Math.Min(op.Len * (op.Kind == 4 ? 8u : 1u), lines * 64 - off);
                ulong seed = (ulong)op.Seed * 0x1234567 + 1;
                if (op.Kind == 3) { uint a = (uint)(off >> 6), b = (uint)Math.Min(lines, a + op.Len / 64 + 1); map.Zero(a, b); for (uint l = a; l < b; l++) tags[l] = 0; }
                else
                {
                    for (ulong l = off >> 6; l << 6 < off + len; l++)
                    {
                        ulong ls = l << 6, s = Math.Max(ls, off), e = Math.Min(ls + 64, off + len);
                        long po = (long)(s - off);
                        tags[l] = s == ls && e == ls + 64 ? ContentTag.PatternLine(seed, po) : ContentTag.Mix(tags[l], seed, po, (int)(s - ls), (int)(e - s));
                    }
                    map.Write(off, len, seed, 0);
                }
                for (uint l = 0; l < lines; l++) Assert.Equal(tags[l], map.Tag(l));
            }
            var copy = new ContentMap();
            copy.CopyFrom(map, 0, 0, lines);
            for (uint l = 0; l < lines; l++) Assert.Equal(tags[l], copy.Tag(l));
        }, iter: 60, stream: 1004, print: ops => string.Join(" ", ops));
    }

    [Fact]
    public void A_page_table_page_gets_the_folio_an_order_zero_allocation_would_have_when_first_asked()
    {
        var pm = new PhysicalMemory(Units.GiB);
        var reference = new PhysicalMemory(Units.GiB);
        var pfns = Enumerable.Range(0, 600).Select(_ => pm.AllocPageTablePage()!.Value).ToList();
        var folios = Enumerable.Range(0, 600).Select(_ => reference.AllocFolio(0)!).ToList();
        Assert.Equal(folios.Select(f => f.Pfn), pfns);
        Assert.Equal(reference.FreePages, pm.FreePages);
        Assert.Equal(600, pm.Folios.Count);
        var made = pm.FolioOf(pfns[7])!;
        Assert.Equal((folios[7].Pfn, folios[7].Flags, folios[7].RefCount), (made.Pfn, made.Flags, made.RefCount));
        Assert.Same(made, pm.FolioOf(pfns[7]));
        Assert.Same(made, pm.Folios[pfns[7]]);
        var table = new PageTable(pm, pfns[8], PtLevel.Pte);
        Assert.Same(pm.FolioOf(pfns[8]), table.Backing);
        // a table freed before its folio was asked for keeps a folio of its own, not the pfn's next owner's
        var gone = new PageTable(pm, pfns[9], PtLevel.Pte);
        gone.Freeing();
        pm.FreePage(pfns[9]);
        Assert.Equal(pfns[9], pm.AllocPageTablePage());
        Assert.NotSame(pm.FolioOf(pfns[9]), gone.Backing);
        Assert.Same(gone.Backing, gone.Backing);
        // a made folio can be poisoned; freeing its page then quarantines it, as free_pages_prepare() does
        made.Flags = made.Flags.With(PageFlags.PG_hwpoison);
        foreach (var p in pfns) pm.FreePage(p);
        Assert.Throws<InvalidOperationException>(() => pm.FreePage(pfns[0]));
        Assert.True(pm.IsRawHwpoison(pfns[7]));
        Assert.Equal(pm.TotalPages - 1, pm.FreePages);
        Assert.Empty(pm.Folios);
    }

    public readonly record struct PendOp(int Kind, int Index, int Sub);

    private static readonly Gen<PendOp[]> PendOps =
        (from k in Gen.Int[0, 5] from i in Gen.Int[0, 511] from j in Gen.Int[0, 511] select new PendOp(k, i, j)).Array[1, 60];

    [Fact]
    public void A_table_with_pending_children_reads_like_one_split_leaf_by_leaf()
    {
        // the reference: the 512 PTE tables made at once, as SplitLeaf makes them; the pending form makes each when asked
        Pbt.Run(PendOps, ops =>
        {
            var pm = new PhysicalMemory(2 * Units.GiB);
            ulong p0 = pm.AllocPageTablePage()!.Value;
            for (int i = 1; i < 512; i++) Assert.Equal(p0 + (ulong)i, pm.AllocPageTablePage());
            var leaf = new Pte(Pte.Leaf(0x40000, huge: true, writable: true).Raw | Pte._PAGE_DIRTY);
            var lazy = new PageTable(pm, pm.AllocPageTablePage()!.Value, PtLevel.Pmd);
            lazy.SetLinear(leaf, Units.PMD_SIZE);
            lazy.SetPendingChildren(pm, p0);
            var eager = new PageTable(pm, pm.AllocPageTablePage()!.Value, PtLevel.Pmd);
            eager.SetLinear(leaf, Units.PMD_SIZE);
            for (int i = 0; i < 512; i++)
            {
                var c = new PageTable(pm, p0 + (ulong)i, PtLevel.Pte);
                var (first, step) = PageTable.SplitRun(new Pte(leaf.Raw + (ulong)i * Units.PMD_SIZE), PtLevel.Pte);
                c.SetLinear(first, step);
                eager.Set(i, Pte.None);
                eager.SetChild(i, c);
            }
            Assert.Null(lazy.LinearRun);
            foreach (var op in ops)
            {
                switch (op.Kind)
                {
                    case 0: lazy.Child(op.Index)?.Set(op.Sub, Pte.Hwpoison(0x40000 + (ulong)op.Index * 512 + (ulong)op.Sub)); eager.Child(op.Index)?.Set(op.Sub, Pte.Hwpoison(0x40000 + (ulong)op.Index * 512 + (ulong)op.Sub)); break;
                    case 1: Assert.Equal(eager.DetachChild(op.Index)?.Pfn, lazy.DetachChild(op.Index)?.Pfn); break;
                    case 2: lazy.Set(op.Index, Pte.PoisonMarker()); eager.Set(op.Index, Pte.PoisonMarker()); break;
                    default: break;
                }
                Assert.Equal(eager.IsTable(op.Index), lazy.IsTable(op.Index));
                Assert.Equal(eager.Get(op.Index), lazy.Get(op.Index));
                Assert.Equal(eager.Used, lazy.Used);
                var (a, b) = (eager.Child(op.Index), lazy.Child(op.Index));
                Assert.Equal(a?.Pfn, b?.Pfn);
                if (a is not null) for (int j = 0; j < 512; j += 37) Assert.Equal(a.Get(j), b!.Get(j));
                if (a is not null) Assert.Equal(a.LinearRun, b!.LinearRun);
            }
            for (int i = 0; i < 512; i++)
            {
                Assert.Equal(eager.Get(i), lazy.Get(i));
                Assert.Equal(eager.Child(i)?.Pfn, lazy.Child(i)?.Pfn);
                if (eager.Child(i) is { } c) Assert.Equal(c.Get(511), lazy.Child(i)!.Get(511));
            }
        }, iter: 40, stream: 1005, print: ops => string.Join(" ", ops));
    }

    [Theory]
    [InlineData("hgm-full-split")]
    [InlineData("vma-convert")]
    public void A_full_split_counts_512_PTE_pages_per_mapping_and_maps_every_4K_as_before(string policy)
    {
        var k = new Kernel(new KernelConfig { MemoryBytes = 4 * Units.GiB, HugePages1G = 1, Policy = policy });
        var a = k.Spawn("A");
        int fd = (int)k.MemfdCreate(a, "g", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        k.Ftruncate(a, fd, 1L << 30);
        var b = k.Fork(a, "B");
        var maps = new List<(TaskStruct T, ulong Va)>();
        foreach (var t in new[] { a, b })
        {
            ulong v = (ulong)k.Mmap(t, Units.GiB, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "m").Ret;
            k.Access(t, v, 64, write: true, 7, 0);
            maps.Add((t, v));
        }
        ulong head = k.Walk(a.Mm, maps[0].Va).Entry.Pfn, raw = head + 0x12345;
        long tables = k.Stats.TablePagesNow, pages = (long)k.Phys.FreePages;
        k.MemoryFailure(raw, MfFlags.None, raw << Units.PAGE_SHIFT);
        // the kernel allocates one PMD page and 512 PTE pages per 1 GiB mapping split to 4 KiB
        Assert.Equal(tables + 2 * 513, k.Stats.TablePagesNow);
        Assert.Equal(pages - 2 * 513, (long)k.Phys.FreePages);
        foreach (var (t, va) in maps)
        {
            ulong next = head, runs = 0;
            k.ForEachLeafRun(t.Mm, va, va + Units.GiB, run =>
            {
                runs++;
                Assert.Equal(PtLevel.Pte, run.Level);
                for (int i = 0; i < run.Count; i++, next++)
                {
                    var e = run.EntryAt(i);
                    Assert.Equal(next, e.Pfn);
                    Assert.Equal(next == raw, e.IsHwpoison);
                    Assert.True(next == raw || e.Present && e.Writable);
                }
            });
            Assert.Equal(head + 262144, next);
            Assert.True(runs >= 512, $"{runs} runs");
        }
        Assert.True(k.Phys.Folios.Count > 2 * 513);
    }
}

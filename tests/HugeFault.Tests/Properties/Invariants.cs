using HugeFault.Mm;
using HugeFault.Policies;

namespace HugeFault.Tests.Properties;

/// <summary>
/// Invariants of the kernel model that must hold after every operation, under any recovery policy (where a policy
/// may differ from mainline, the invariant says so). Each adds
/// human-readable problems to a list instead of throwing, so one step can report several. HardwareCorrupted
/// is checked with unpoison in the mix too (<see cref="KernelWorld.Unpoisoned"/> says whether one succeeded).
/// </summary>
public static class Invariants
{
    public static List<string> Check(KernelWorld w) => Check(w, full: true);

    /// <summary>
    /// The invariants after one step. The cheap ones (a completed load or read returned no poisoned byte and the data
    /// written there) run every step, at a cost proportional to the access; <paramref name="full"/> adds the ones that
    /// visit every mapping, page-table page and folio (leaf runs, not subpages), which the long mode runs every k-th step.
    /// </summary>
    public static List<string> Check(KernelWorld w, bool full)
    {
        var p = new List<string>();
        var k = w.K;
        NoLoadReturnedPoison(w, p);
        w.Shadow.Sync();
        w.Shadow.CheckLoad(w, p);
        if (!full) return p;
        var tables = PageTables(k, p);
        RmapAgreesWithPageTables(k, tables, p);
        PoolCountersAddUp(k, p);
        HardwareCorruptedCountsDistinctRawPages(k, p);
        MemoryIsConserved(k, p);
        w.Shadow.CheckAll(p);
        return p;
    }

    /// <summary>
    /// After every task exited (<see cref="KernelWorld.ExitAll"/>): no page-table page is left, no huge page is reserved,
    /// and every folio still allocated is one memory_failure() kept (PG_hwpoison, or a reference it holds): nothing leaked.
    /// </summary>
    public static List<string> CheckAfterExit(KernelWorld w)
    {
        var p = Check(w, full: true);
        var k = w.K;
        if (k.Stats.TablePagesNow != 0) p.Add($"every task exited but {k.Stats.TablePagesNow} page-table pages are left");
        foreach (var h in k.Hstates)
            if (h.resv_huge_pages != 0) p.Add($"{h.Name}: every task exited but resv_huge_pages={h.resv_huge_pages}");
        foreach (var f in k.Phys.Folios.Values)
            if (!f.Flags.Has(PageFlags.HugetlbFreed) && !f.IsHwpoison && !f.HasRawHwp && !f.MfRefHeld)
                p.Add($"every task exited but {f} is still allocated (RefCount={f.RefCount}, mapped {f.EntireMapcount + f.PartialMappings} times, in a page cache: {f.Mapping is not null})");
        return p;
    }

    /// <summary>All address spaces (live and dead), each once, in creation order.</summary>
    public static List<MmStruct> Mms(Kernel k) => k.Tasks.Select(t => t.Mm).Distinct().OrderBy(m => m.Id).ToList();

    /// <summary>
    /// Stats.TablePagesNow equals the page-table pages reachable from the live mms' PGDs, each mm's
    /// PgtablePages matches its own tables, and a dead mm has no VMAs and no page-table pages left.
    /// Returns the pfns of page-table pages (they are folios too, but not user memory).
    /// </summary>
    public static HashSet<ulong> PageTables(Kernel k, List<string> p)
    {
        var pfns = new HashSet<ulong>();
        long total = 0;
        foreach (var mm in Mms(k))
        {
            if (mm.Users == 0)
            {
                // exit_mmap() + mm_free_pgd(): a dead mm holds no VMAs and no page-table pages, not even its PGD
                if (mm.Vmas.Count > 0) p.Add($"dead mm {mm.Id} still has {mm.Vmas.Count} VMAs");
                if (mm.PgtablePages != 0) p.Add($"dead mm {mm.Id} still holds {mm.PgtablePages} page-table pages");
                if (k.Phys.Folios.TryGetValue(mm.Pgd.Pfn, out var pf) && pf == mm.Pgd.Backing) p.Add($"dead mm {mm.Id}'s PGD {Units.Hex(mm.Pgd.Pfn)} was never freed");
                continue;
            }
            int n = 0;
            void Count(PageTable t)
            {
                n++;
                if (!pfns.Add(t.Pfn)) p.Add($"page-table page {Units.Hex(t.Pfn)} is reachable twice");
                if (!k.Phys.Folios.TryGetValue(t.Pfn, out var f) || f != t.Backing) p.Add($"page-table page {Units.Hex(t.Pfn)} of mm {mm.Id} is not an allocated folio");
                int used = 0;
                if (t.LinearRun is not null) used = Units.PTRS_PER_TABLE; // one run, no children: 512 set entries
                else
                    for (int i = 0; i < Units.PTRS_PER_TABLE; i++)
                    {
                        if (!t.Entries[i].IsNone) used++;
                        if (t.Child(i) is { } c) Count(c);
                    }
                if (used != t.Used) p.Add($"table {Units.Hex(t.Pfn)} ({t.Level}) Used={t.Used} but {used} entries are set");
                // empty tables may stay: unmap_mapping_range() (truncate, punch hole) zaps entries but only munmap/exit free tables
            }
            Count(mm.Pgd);
            total += n;
            if (n != mm.PgtablePages) p.Add($"mm {mm.Id}: PgtablePages={mm.PgtablePages} but {n} tables are reachable");
        }
        if (total != k.Stats.TablePagesNow) p.Add($"Stats.TablePagesNow={k.Stats.TablePagesNow} but {total} page-table pages are reachable from the mms' PGDs");
        return pfns;
    }

    /// <summary>
    /// Every present leaf of every live mm lies inside a VMA, maps an allocated, non-free folio whose rmap
    /// (i_mmap or anon_vma) holds that VMA, and mapcounts equal the leaves counted; i_mmap/anon_vma hold only live VMAs;
    /// mainline never leaves a PG_hwpoison folio mapped; refcounts are mappers + the page cache's one.
    /// </summary>
    public static void RmapAgreesWithPageTables(Kernel k, HashSet<ulong> tablePfns, List<string> p)
    {
        var entire = new Dictionary<Folio, int>();
        var partial = new Dictionary<Folio, int>();
        var rmap = new Dictionary<Folio, HashSet<Vma>>();
        foreach (var mm in Mms(k))
        {
            foreach (var v in mm.Vmas)
            {
                if (v.File is { } file && !file.IMmap.Contains(v)) p.Add($"{v} of mm {mm.Id} is missing from {file}'s i_mmap");
                if (v.AnonVma is { } av && !av.Vmas.Contains(v)) p.Add($"{v} of mm {mm.Id} is missing from its anon_vma");
            }
            // by leaf runs (a split 1 GiB mapping is 512 runs, not 262,144 leaves), cut where a VMA or a folio ends
            k.ForEachLeafRun(mm, 0, 1UL << 48, r =>
            {
                if (mm.Users == 0) { p.Add($"dead mm {mm.Id} still has an entry at {Units.Hex(r.Va)}: {r.First}"); return; }
                ulong es = r.Size, stepPages = r.Step >> Units.PAGE_SHIFT, pagesPerEntry = es >> Units.PAGE_SHIFT;
                for (int at = 0; at < r.Count;)
                {
                    ulong va = r.Va + (ulong)at * es;
                    var vma = mm.FindVma(va);
                    if (vma is null || va + es > vma.End) { p.Add($"mm {mm.Id}: entry {r.EntryAt(at)} at {Units.Hex(va)} (size {Units.Size(es)}) is outside any VMA"); return; }
                    int n = (int)Math.Min((ulong)(r.Count - at), (vma.End - va) / es);
                    var e = r.EntryAt(at);
                    if (!e.Present) { at += n; continue; }
                    var f = k.Phys.FolioOf(e.Pfn);
                    if (f is null) { p.Add($"mm {mm.Id}: leaf at {Units.Hex(va)} maps pfn {Units.Hex(e.Pfn)}, which is free memory"); return; }
                    if (tablePfns.Contains(f.Pfn)) { p.Add($"mm {mm.Id}: leaf at {Units.Hex(va)} maps page-table page {Units.Hex(e.Pfn)}"); return; }
                    if (stepPages > 0) n = (int)Math.Min((ulong)n, (f.Pfn + f.NrPages - e.Pfn + stepPages - 1) / stepPages); // the entries inside f
                    if (f.Flags.Has(PageFlags.HugetlbFreed)) p.Add($"mm {mm.Id}: leaf at {Units.Hex(va)} maps {f}, which is on the hugetlb free list");
                    ulong lo = e.Pfn, hi = e.Pfn + (stepPages > 0 ? (ulong)(n - 1) * stepPages : 0) + pagesPerEntry;
                    if (MapsPoison(k, f, lo, hi)) p.Add($"mm {mm.Id}: leaf at {Units.Hex(va)} (+{n} × {Units.Size(es)}) still maps {(k.Policy.Name == RecoveryPolicies.Baseline ? "" : "a poisoned raw page of ")}PG_hwpoison {f}");
                    if (!rmap.TryGetValue(f, out var vmas)) rmap[f] = vmas = k.RmapVmas(f).ToHashSet();
                    if (!vmas.Contains(vma)) p.Add($"mm {mm.Id}: leaf at {Units.Hex(va)} maps {f} but the folio's rmap does not hold {vma}");
                    var d = es >= f.Size ? entire : partial;
                    d[f] = d.GetValueOrDefault(f) + n;
                    at += n;
                }
            });
        }
        foreach (var i in k.Inodes)
            foreach (var v in i.IMmap)
                if (!v.Mm.Vmas.Contains(v) || v.Mm.Users == 0) p.Add($"{i}'s i_mmap holds {v}, which is not a VMA of a live mm");
        foreach (var f in k.Phys.Folios.Values)
        {
            if (tablePfns.Contains(f.Pfn)) continue;
            int en = entire.GetValueOrDefault(f), pa = partial.GetValueOrDefault(f);
            if (f.EntireMapcount != en || f.PartialMappings != pa)
                p.Add($"{f}: EntireMapcount={f.EntireMapcount} PartialMappings={f.PartialMappings} but page tables hold {en} entire and {pa} partial leaves");
            if (f.Flags.Has(PageFlags.HugetlbFreed)) continue;
            bool inCache = f.Mapping is { } m && !f.IsAnon && m.PageCache.TryGetValue(f.Index, out var c) && c == f;
            // memory_failure() keeps a reference on an in-use folio it handled (MfRefHeld; case 17 on Linux 6.12)
            int want = en + pa + (inCache ? 1 : 0) + (f.MfRefHeld ? 1 : 0);
            if (f.RefCount != want) p.Add($"{f}: RefCount={f.RefCount} but {en + pa} mappings{(inCache ? " + the page cache" : "")}{(f.MfRefHeld ? " + memory-failure" : "")} hold it");
            if (want == 0 && !f.IsHugetlb) p.Add($"{f}: order-0 folio with no reference is still allocated (leak)");
        }
    }

    /// <summary>
    /// A leaf mapping pfns [lo, hi) of PG_hwpoison folio f breaks the policy's promise: mainline unmaps the whole folio,
    /// a large folio any other policy handles keeps at least its poisoned raw pages unmapped (MFD_MF_KEEP_UE_MAPPED keeps
    /// them mapped on purpose: its loads of them take the machine check, which NoLoadReturnedPoison checks).
    /// </summary>
    private static bool MapsPoison(Kernel k, Folio f, ulong lo, ulong hi)
    {
        if (!f.IsHwpoison) return false;
        if (f.Order == 0) return true;
        if (f.IsHugetlb && k.Policy.SupportsKeepUeMapped) return false;
        if (f.IsHugetlb && k.Policy.Name == RecoveryPolicies.Baseline) return true;
        // HGM, a converted VMA, a large folio split by memory_failure(): the raw pages are what must not be mapped
        if (!f.HasRawHwp) return false;
        foreach (var raw in f.RawHwp) if (raw >= lo && raw < hi) return true;
        return false;
    }

    /// <summary>nr = free + in use, free = free list, 0 ≤ resv ≤ free, 0 ≤ surplus ≤ nr, resv = the reserve maps' entries.</summary>
    public static void PoolCountersAddUp(Kernel k, List<string> p)
    {
        var inUseByOrder = new Dictionary<int, int>();
        foreach (var f in k.Phys.Folios.Values)
            if (f.IsHugetlb && !f.Flags.Has(PageFlags.HugetlbFreed)) inUseByOrder[f.Order] = inUseByOrder.GetValueOrDefault(f.Order) + 1;
        foreach (var h in k.Hstates)
        {
            string n = h.Name;
            int inUse = inUseByOrder.GetValueOrDefault(h.Order);
            if (h.nr_huge_pages != h.free_huge_pages + inUse) p.Add($"{n}: nr_huge_pages={h.nr_huge_pages} but free={h.free_huge_pages} + in use={inUse}");
            if (h.free_huge_pages != h.FreeList.Count) p.Add($"{n}: free_huge_pages={h.free_huge_pages} but the free list holds {h.FreeList.Count}");
            foreach (var f in h.FreeList)
                if (!f.Flags.Has(PageFlags.HugetlbFreed) || !k.Phys.Folios.TryGetValue(f.Pfn, out var g) || g != f || f.Mapped)
                    p.Add($"{n}: free-list folio {f} is not a free, allocated, unmapped hugetlb folio");
            if (h.FreeList.Distinct().Count() != h.FreeList.Count) p.Add($"{n}: a folio is on the free list twice");
            if (h.resv_huge_pages < 0 || h.resv_huge_pages > h.free_huge_pages) p.Add($"{n}: resv_huge_pages={h.resv_huge_pages} outside [0, free={h.free_huge_pages}]");
            if (h.surplus_huge_pages < 0 || h.surplus_huge_pages > h.nr_huge_pages) p.Add($"{n}: surplus_huge_pages={h.surplus_huge_pages} outside [0, nr={h.nr_huge_pages}]");
            long shared = k.Inodes.Where(i => i.Hstate == h).Sum(i => (long)i.SharedResv.Count);
            long priv = k.Tasks.Select(t => t.Mm).Distinct().SelectMany(m => m.Vmas)
                .Where(v => v.Hstate == h && v.PrivateResv is not null).Select(v => v.PrivateResv!).Distinct().Sum(s => (long)s.Count);
            if (h.resv_huge_pages != shared + priv) p.Add($"{n}: resv_huge_pages={h.resv_huge_pages} but the reserve maps hold {shared} shared + {priv} private");
        }
    }

    /// <summary>num_poisoned_pages counts each distinct poisoned raw page once: raw_hwp records, PG_hwpoison order-0 folios, quarantined pages.</summary>
    public static void HardwareCorruptedCountsDistinctRawPages(Kernel k, List<string> p)
    {
        var raw = new HashSet<ulong>(k.Phys.RawHwpoisonPages);
        foreach (var f in k.Phys.Folios.Values)
        {
            // a hugetlb folio or a large folio (a converted one) keeps its raw pages in raw_hwp; an order-0 folio is its raw page
            if (f.HasRawHwp) foreach (var r in f.RawHwp) raw.Add(r);
            else if (f.IsHwpoison && !f.IsHugetlb) raw.Add(f.Pfn);
        }
        if (k.NumPoisonedPages != raw.Count) p.Add($"NumPoisonedPages={k.NumPoisonedPages} but {raw.Count} distinct raw pages are poisoned");
        foreach (var r in k.Phys.RawHwpoisonPages)
            if (k.Phys.IsFreePfn(r)) p.Add($"quarantined raw page {Units.Hex(r)} is back on the buddy free lists");
    }

    /// <summary>
    /// Every 4 KiB frame is in exactly one place: free in buddy, in an allocated folio, or quarantined
    /// (PG_hwpoison raw page off buddy); and the page-table counters agree with each other.
    /// </summary>
    public static void MemoryIsConserved(Kernel k, List<string> p)
    {
        ulong inFolios = 0;
        foreach (var f in k.Phys.Folios.Values) inFolios += f.NrPages;
        ulong quarantined = (ulong)k.Phys.RawHwpoisonPages.Count(r => k.Phys.FolioOf(r) is null);
        ulong free = 0;
        for (int o = 0; o <= Units.MAX_ORDER; o++) free += (ulong)k.Phys.FreeBlocks(o) << o;
        if (free != k.Phys.FreePages) p.Add($"FreePages={k.Phys.FreePages} but the buddy free lists hold {free} pages");
        if (free + inFolios + quarantined != k.Phys.TotalPages)
            p.Add($"{free} free + {inFolios} in folios + {quarantined} quarantined pages != {k.Phys.TotalPages} pages of memory");
        var st = k.Stats;
        if (st.TablePagesAllocated - st.TablePagesFreed != st.TablePagesNow)
            p.Add($"TablePagesAllocated={st.TablePagesAllocated} - TablePagesFreed={st.TablePagesFreed} != TablePagesNow={st.TablePagesNow}");
    }

    /// <summary>A load that completed read no hardware-poisoned cacheline; a read()/pread() returned no poisoned byte.</summary>
    public static void NoLoadReturnedPoison(KernelWorld w, List<string> p)
    {
        var k = w.K;
        if (w.CompletedLoad is var (t, va, len) && t.Alive)
        {
            k.ForEachLeaf(t.Mm, va, va + len, r =>
            {
                if (!r.Entry.Present) { p.Add($"a load of [{Units.Hex(va)}, +{len}) completed but {Units.Hex(r.Va)} is not mapped: {r.Entry}"); return; }
                ulong s = Math.Max(va, r.Va), e = Math.Min(va + len, r.Va + r.Size);
                ulong pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (s - r.Va);
                if (k.Phys.FirstPoisonedLine(pa, e - s) is { } bad)
                    p.Add($"a load by {t} of [{Units.Hex(va)}, +{len}) completed (\"ok\") but read poisoned cacheline {Units.Hex(bad)}");
            });
        }
        foreach (var (rpa, rlen) in w.ReadRanges)
            if (k.Phys.FirstPoisonedLine(rpa, rlen) is { } bad)
                p.Add($"read()/pread() returned bytes of poisoned cacheline {Units.Hex(bad)}");
    }
}

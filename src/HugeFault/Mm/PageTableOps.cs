using HugeFault.Mm;

namespace HugeFault;

// Page-table allocation, walks, leaf install/zap with rmap accounting (mm/memory.c, mm/hugetlb.c, mm/rmap.c).
public sealed partial class Kernel
{
    /// <summary>pte_alloc_one() and friends: one 4 KiB frame from buddy, counted as page-table memory.</summary>
    internal PageTable? AllocTable(MmStruct? mm, PtLevel level) => AllocTablePage(mm) is { } pfn ? new PageTable(Phys, pfn, level) : null;

    /// <summary><see cref="AllocTable"/>'s page and its accounting (mm_inc_nr_ptes() and friends), the table object left to the caller.</summary>
    internal ulong? AllocTablePage(MmStruct? mm)
    {
        if (Phys.AllocPageTablePage() is not { } pfn) return null;
        if (mm is not null) mm.PgtablePages++;
        Stats.TablePagesAllocated++; Stats.TablePagesNow++;
        if (Stats.TablePagesNow > Stats.TablePagesPeak) Stats.TablePagesPeak = Stats.TablePagesNow;
        return pfn;
    }

    internal void FreeTable(MmStruct mm, PageTable t)
    {
        t.Freeing();
        Phys.FreePage(t.Pfn); // pagetable_free()
        mm.PgtablePages--;
        Stats.TablePagesFreed++; Stats.TablePagesNow--;
    }

    /// <summary>Walks to the entry mapping va at the given level, allocating missing tables; null if out of memory or a leaf sits above.</summary>
    internal PteRef? WalkAlloc(MmStruct mm, ulong va, PtLevel level)
    {
        var t = mm.Pgd;
        while (t.Level > level)
        {
            int i = PageTable.Index(va, t.Level);
            var child = t.Child(i);
            if (child is null)
            {
                if (!t.Get(i).IsNone) return null; // a leaf or swap entry at a higher level
                child = AllocTable(mm, t.Level - 1);
                if (child is null) return null;
                t.SetChild(i, child);
                Stats.EntriesWritten++;
            }
            t = child;
        }
        int idx = PageTable.Index(va, t.Level);
        return new PteRef(t, idx, Units.AlignDown(va, t.EntrySize));
    }

    /// <summary>Finds the entry that decides va: a leaf, swap entry or none at the deepest level reached (huge_pte_offset / hugetlb_walk).</summary>
    public PteRef Walk(MmStruct mm, ulong va)
    {
        var t = mm.Pgd;
        while (true)
        {
            int i = PageTable.Index(va, t.Level);
            var child = t.Child(i);
            if (child is null || t.Level == PtLevel.Pte) return new PteRef(t, i, Units.AlignDown(va, t.EntrySize));
            t = child;
        }
    }

    /// <summary>Installs a present leaf mapping pfn (the start of the leaf) of folio f, with rmap/mapcount/refcount accounting.</summary>
    internal void InstallLeaf(PteRef r, Folio f, ulong pfn, bool writable, bool dirty)
    {
        var e = Pte.Leaf(pfn, r.Level != PtLevel.Pte, writable);
        if (dirty) e = new Pte(e.Raw | Pte._PAGE_DIRTY);
        r.Table.Set(r.Index, e);
        Stats.EntriesWritten++;
        AddRmap(f, pfn, r.Size, +1);
    }

    /// <summary>
    /// Rmap accounting for one leaf of the given size (hugetlb_add_file_rmap()/page_remove_rmap() and, for leaves smaller
    /// than the folio, the per-subpage mapcounts of HGM v2 / THP: atomic_inc(&amp;page-&gt;_mapcount) for every subpage).
    /// The model keeps the state per leaf (entire mapcount, or one partial mapping) and derives a subpage's mapcount when
    /// asked (<see cref="SubpageMapcount"/>); the modelled kernel work is still counted as the kernel design does it:
    /// one update for an entire mapping, one per subpage otherwise.
    /// </summary>
    internal void AddRmap(Folio f, ulong pfn, ulong size, int delta) => AddRmapRun(f, size, 1, delta);

    /// <summary><see cref="AddRmap"/> for <paramref name="count"/> leaves of one size at once (a split, a run zap).</summary>
    internal void AddRmapRun(Folio f, ulong size, int count, int delta)
    {
        f.RefCount += delta * count;
        if (size >= f.Size) { f.EntireMapcount += delta * count; Stats.MapcountUpdates += count; return; }
        f.PartialMappings += delta * count;
        Stats.MapcountUpdates += (long)(size >> Units.PAGE_SHIFT) * count;
    }

    /// <summary>
    /// page_mapcount() of one subpage: the leaves of every mapper that cover it (entire mappings included), derived from
    /// the page tables through the rmap (i_mmap / anon_vma) instead of stored per subpage.
    /// </summary>
    public int SubpageMapcount(Folio f, ulong pfn)
    {
        if (!f.ContainsPfn(pfn)) return 0;
        int n = 0;
        foreach (var v in RmapVmas(f))
            foreach (var (s, e) in CandidateRanges(f, v))
                ForEachLeafRun(v.Mm, s, e, run =>
                {
                    var first = run.First;
                    if (!first.Present || run.Step != run.Size && run.Count > 1) return;
                    ulong pages = run.Size >> Units.PAGE_SHIFT;
                    if (pfn >= first.Pfn && pfn < first.Pfn + pages * (ulong)run.Count) n++;
                    return;
                });
        return n;
    }

    /// <summary>Clears one entry (leaf, swap entry or marker), dropping the rmap of a present leaf; frees a folio whose last reference goes.</summary>
    internal void ZapEntry(PteRef r)
    {
        var e = r.Entry;
        if (e.IsNone) return;
        r.Table.Set(r.Index, Pte.None);
        Stats.EntriesWritten++;
        if (!e.Present) return;
        var f = Phys.FolioOf(e.Pfn);
        if (f is null) return;
        if ((e.Raw & Pte._PAGE_DIRTY) != 0 && !f.IsHugetlb) f.Flags = f.Flags.With(PageFlags.PG_dirty);
        AddRmap(f, e.Pfn, r.Size, -1);
        f.RefCount++; // AddRmap dropped the mapping's reference; drop it through FolioPut so freeing happens
        FolioPut(f);
    }

    /// <summary>Adds to <paramref name="into"/> every present leaf of mm in [start, end) that maps a page of folio old (with its page index in the folio and its bits).</summary>
    internal void CollectFolioLeaves(MmStruct mm, ulong start, ulong end, Folio old, List<FolioLeaf> into) =>
        ForEachLeaf(mm, start, end, r =>
        {
            var en = r.Entry;
            if (en.Present && old.ContainsPfn(en.Pfn)) into.Add(new FolioLeaf(mm, r, en.Pfn - old.Pfn, en.Writable, (en.Raw & Pte._PAGE_DIRTY) != 0));
        });

    /// <summary>
    /// Moves each collected leaf to the same page of folio nf (clear_flush of the old entry, then set_pte_at()/set_huge_pte_at()
    /// of the new one): what migrate_pages()' remove_migration_ptes() and hugetlb_wp()'s break-COW do to the mappings.
    /// <paramref name="makeWritable"/>: hugetlb_wp() maps the copy writable and dirty; migration keeps each entry's bits.
    /// The callers tell secondary MMUs (mmu notifier) over the ranges the kernel brackets.
    /// </summary>
    internal void RemapFolioLeaves(List<FolioLeaf> leaves, Folio nf, bool makeWritable)
    {
        foreach (var l in leaves)
        {
            ZapEntry(l.R);
            InstallLeaf(l.R, nf, nf.Pfn + l.Page, makeWritable || l.Writable, makeWritable || l.Dirty);
        }
    }

    /// <summary>Zaps every entry in [start, end) of mm, descending into tables, and frees tables that became empty (unmap_page_range + free_pgtables).</summary>
    internal void ZapRange(MmStruct mm, ulong start, ulong end)
    {
        MmuNotifierInvalidate(mm, start, end - start);
        ZapIn(mm, mm.Pgd, start, end, 0);
    }

    private void ZapIn(MmStruct mm, PageTable t, ulong start, ulong end, ulong tBase)
    {
        ulong es = t.EntrySize;
        if (t.Level == PtLevel.Pte && start <= tBase && end >= tBase + 512 * es && ZapRunTable(t, tBase)) return;
        for (int i = PageTable.Index(start, t.Level); i < 512; i++)
        {
            ulong eStart = tBase + (ulong)i * es, eEnd = eStart + es;
            if (eStart >= end) break;
            if (eEnd <= start) continue;
            var child = t.Child(i);
            if (child is not null)
            {
                ZapIn(mm, child, Math.Max(start, eStart), Math.Min(end, eEnd), eStart);
                if (child.Used == 0 && start <= eStart && end >= eEnd || child.Used == 0)
                { t.DetachChild(i); FreeTable(mm, child); }
            }
            else if (!t.Get(i).IsNone)
            {
                // a leaf covering more than the range is only legal for hugetlb with aligned ranges
                ZapEntry(new PteRef(t, i, eStart));
            }
        }
    }

    /// <summary>
    /// zap_pte_range() over a whole PTE table stored as one run (a split table no one rewrote): the same effect as
    /// zapping its 512 entries one by one, done once for the run. False (nothing done) when the run is not one
    /// folio's pages or the folio would be freed before the last entry, so the entry-by-entry path decides.
    /// </summary>
    private bool ZapRunTable(PageTable t, ulong tBase)
    {
        if (t.LinearRun is not (Pte first, ulong step)) return false;
        const int n = Units.PTRS_PER_TABLE;
        if (first.Present)
        {
            var f = Phys.FolioOf(first.Pfn);
            if (f is null || step != Units.PAGE_SIZE || !f.ContainsPfn(first.Pfn + n - 1) || f.RefCount <= n) return false;
            if ((first.Raw & Pte._PAGE_DIRTY) != 0 && !f.IsHugetlb) f.Flags = f.Flags.With(PageFlags.PG_dirty);
            AddRmapRun(f, Units.PAGE_SIZE, n, -1);
        }
        t.Clear();
        Stats.EntriesWritten += n;
        return true;
    }

    /// <summary>Calls visit for every non-none leaf entry in [start, end) of mm.</summary>
    public void ForEachLeaf(MmStruct mm, ulong start, ulong end, Action<PteRef> visit) => LeavesIn(mm.Pgd, start, end, 0, visit);

    private static void LeavesIn(PageTable t, ulong start, ulong end, ulong tBase, Action<PteRef> visit)
    {
        ulong es = t.EntrySize;
        for (int i = start <= tBase ? 0 : PageTable.Index(start, t.Level); i < 512; i++)
        {
            ulong eStart = tBase + (ulong)i * es, eEnd = eStart + es;
            if (eStart >= end) break;
            if (eEnd <= start) continue;
            var child = t.Child(i);
            if (child is not null) LeavesIn(child, start, end, eStart, visit);
            else if (!t.Get(i).IsNone) visit(new PteRef(t, i, eStart));
        }
    }

    /// <summary>
    /// walk_page_range() by runs: calls visit once per maximal run of consecutive non-none leaves of one table in
    /// [start, end) that continue each other (each maps the next pages: raw + entry size, for present and hwpoison
    /// entries; equal markers otherwise). A fully split 1 GiB mapping is 512 runs, not 262,144 leaves. Returning
    /// false from visit stops the walk. Returns false if stopped.
    /// </summary>
    public bool ForEachLeafRun(MmStruct mm, ulong start, ulong end, Func<LeafRunRef, bool> visit) => RunsIn(mm.Pgd, start, end, 0, visit);

    /// <summary><see cref="ForEachLeafRun(MmStruct, ulong, ulong, Func{LeafRunRef, bool})"/> that never stops early.</summary>
    public void ForEachLeafRun(MmStruct mm, ulong start, ulong end, Action<LeafRunRef> visit) =>
        RunsIn(mm.Pgd, start, end, 0, r => { visit(r); return true; });

    private static bool RunsIn(PageTable t, ulong start, ulong end, ulong tBase, Func<LeafRunRef, bool> visit)
    {
        ulong es = t.EntrySize;
        int lo = start <= tBase ? 0 : PageTable.Index(start, t.Level);
        int hi = end >= tBase + 512 * es ? 512 : (int)((end - tBase + es - 1) / es);
        if (t.LinearRun is (Pte first, ulong step) && (step == es || step == 0 && !first.Present && !first.IsHwpoison))
            return lo >= hi || visit(new LeafRunRef(t, lo, hi - lo, tBase + (ulong)lo * es, new Pte(first.Raw + (ulong)lo * step), step));
        for (int i = lo; i < hi; i++)
        {
            var child = t.Child(i);
            ulong eStart = tBase + (ulong)i * es;
            if (child is not null) { if (!RunsIn(child, start, end, eStart, visit)) return false; continue; }
            var e = t.Get(i);
            if (e.IsNone) continue;
            ulong stride = e.Present || e.IsHwpoison ? es : 0;
            int j = i + 1;
            while (j < hi && !t.IsTable(j) && t.Get(j).Raw == e.Raw + (ulong)(j - i) * stride) j++;
            if (!visit(new LeafRunRef(t, i, j - i, eStart, e, stride))) return false;
            i = j - 1;
        }
        return true;
    }

    /// <summary>
    /// Replaces a leaf by a table of the next level whose entries map the same pages (a split), returning the new table.
    /// <paramref name="known"/>: the folio the leaf probably maps (saves the lookup); <paramref name="allocated"/>: the
    /// new table when its page is already allocated (and counted).
    /// </summary>
    internal PageTable? SplitLeaf(MmStruct mm, PteRef r, Folio? known = null, PageTable? allocated = null)
    {
        var e = r.Entry;
        var t = allocated ?? AllocTable(mm, r.Level - 1);
        if (t is null) return null;
        // __split_huge_pmd_locked() / the HGM split: 512 entries one level down, the same pages, the dirty bit kept
        var (first, step) = PageTable.SplitRun(e, t.Level);
        t.SetLinear(first, step);
        Stats.EntriesWritten += 512;
        if (e.Present)
        {
            var f = known is not null && known.ContainsPfn(e.Pfn) ? known : Phys.FolioOf(e.Pfn)!;
            AddRmapRun(f, t.EntrySize, Units.PTRS_PER_TABLE, +1);
            AddRmap(f, e.Pfn, r.Size, -1);
        }
        r.Table.Set(r.Index, Pte.None);
        r.Table.SetChild(r.Index, t);
        Stats.EntriesWritten++;
        MmuNotifierInvalidate(mm, r.Va, r.Size); // secondary MMUs (EPT) drop their large mapping of the range
        return t;
    }

    /// <summary>
    /// <see cref="SplitLeaf"/> for each of the 512 leaves of <paramref name="t"/> (at <paramref name="va"/>), which form
    /// one run of present PMD leaves of <paramref name="folio"/> (a 1 GiB leaf just split): split_huge_pmd() of every
    /// leaf, in order. The kernel's work is done and counted as 512 splits do it (512 page-table pages allocated in
    /// turn, 512 × 513 entries written, the mapcount updates, one MMU-notifier range per leaf); the model keeps the PTE
    /// tables pending (<see cref="PageTable.SetPendingChildren"/>) when their pages are consecutive, and makes each one
    /// when something walks into it. False when a page-table page could not be had (the splits before it done).
    /// </summary>
    internal bool SplitEveryLeaf(MmStruct mm, PageTable t, ulong va, Folio folio)
    {
        const int n = Units.PTRS_PER_TABLE;
        Span<ulong> pfns = stackalloc ulong[n];
        int m = 0;
        while (m < n && AllocTablePage(mm) is { } p) pfns[m++] = p;
        bool consecutive = m == n;
        for (int i = 1; consecutive && i < n; i++) consecutive = pfns[i] == pfns[0] + (ulong)i;
        if (!consecutive || t.LinearRun is not ({ } first, ulong step) || step != t.EntrySize
            || !folio.ContainsPfn(first.Pfn) || !folio.ContainsPfn(first.Pfn + (ulong)(n - 1) * (step >> Units.PAGE_SHIFT)))
        {
            for (int i = 0; i < m; i++)
                SplitLeaf(mm, new PteRef(t, i, va + (ulong)i * t.EntrySize), folio, new PageTable(Phys, pfns[i], t.Level - 1));
            return m == n;
        }
        t.SetPendingChildren(Phys, pfns[0]);
        ulong childEntry = t.EntrySize >> 9;
        AddRmapRun(folio, childEntry, n * n, +1);
        AddRmapRun(folio, t.EntrySize, n, -1);
        Stats.EntriesWritten += (long)n * (n + 1);
        for (int i = 0; i < n; i++) MmuNotifierInvalidate(mm, va + (ulong)i * t.EntrySize, t.EntrySize);
        return true;
    }
}

/// <summary>A present leaf of mm mapping page <paramref name="Page"/> of a folio, with its write and dirty bits (see <see cref="Kernel.CollectFolioLeaves"/>).</summary>
public readonly record struct FolioLeaf(MmStruct Mm, PteRef R, ulong Page, bool Writable, bool Dirty);

/// <summary>
/// A run of <see cref="Count"/> consecutive leaves of one table starting at entry <see cref="Index"/> (mapping
/// <see cref="Va"/> on): entry k of the run is <see cref="First"/> advanced by k × <see cref="Step"/> raw (the next pages
/// for present and hwpoison entries, equal markers when Step is 0).
/// </summary>
public readonly record struct LeafRunRef(PageTable Table, int Index, int Count, ulong Va, Pte First, ulong Step)
{
    public PtLevel Level => Table.Level;
    public int Shift => Table.EntryShift;
    /// <summary>Bytes one entry maps.</summary>
    public ulong Size => Table.EntrySize;
    public ulong End => Va + (ulong)Count * Size;
    public Pte EntryAt(int k) => new(First.Raw + (ulong)k * Step);

    /// <summary>The first entry k of the run whose pfn lies in [lo, hi), or -1 (pfns rise by Step's pages per entry).</summary>
    public int FirstWithPfnIn(ulong lo, ulong hi)
    {
        ulong p0 = First.Pfn, d = Step >> Units.PAGE_SHIFT;
        if (p0 >= hi) return -1;
        if (p0 >= lo) return 0;
        if (d == 0) return -1;
        ulong k = (lo - p0 + d - 1) / d;
        return k < (ulong)Count && p0 + k * d < hi ? (int)k : -1;
    }
    public PteRef Ref(int k) => new(Table, Index + k, Va + (ulong)k * Size);
}

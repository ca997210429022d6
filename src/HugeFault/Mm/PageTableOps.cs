using HugeFault.Mm;

namespace HugeFault;

// Page-table allocation, walks, leaf install/zap with rmap accounting (mm/memory.c, mm/hugetlb.c, mm/rmap.c).
public sealed partial class Kernel
{
    /// <summary>pte_alloc_one() and friends: one 4 KiB frame from buddy, counted as page-table memory.</summary>
    internal PageTable? AllocTable(MmStruct? mm, PtLevel level)
    {
        var f = Phys.AllocFolio(0);
        if (f is null) return null;
        if (mm is not null) mm.PgtablePages++;
        Stats.TablePagesAllocated++; Stats.TablePagesNow++;
        if (Stats.TablePagesNow > Stats.TablePagesPeak) Stats.TablePagesPeak = Stats.TablePagesNow;
        return new PageTable(f, level);
    }

    internal void FreeTable(MmStruct mm, PageTable t)
    {
        Phys.FreeFolio(t.Backing);
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
                if (!t.Entries[i].IsNone) return null; // a leaf or swap entry at a higher level
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

    /// <summary>Rmap accounting for a leaf of the given size: entire mapcount if it covers the folio, else per-subpage (HGM v2).</summary>
    internal void AddRmap(Folio f, ulong pfn, ulong size, int delta)
    {
        f.RefCount += delta;
        if (size >= f.Size) { f.EntireMapcount += delta; Stats.MapcountUpdates++; return; }
        f.PartialMappings += delta;
        ulong n = size >> Units.PAGE_SHIFT;
        var sub = f.SubpageMapcount ??= new int[f.NrPages];
        ulong first = pfn - f.Pfn;
        for (ulong i = 0; i < n; i++) sub[first + i] += delta;
        Stats.MapcountUpdates += (long)n;
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

    /// <summary>Zaps every entry in [start, end) of mm, descending into tables, and frees tables that became empty (unmap_page_range + free_pgtables).</summary>
    internal void ZapRange(MmStruct mm, ulong start, ulong end)
    {
        MmuNotifierInvalidate(mm, start, end - start);
        ZapIn(mm, mm.Pgd, start, end, 0);
    }

    private void ZapIn(MmStruct mm, PageTable t, ulong start, ulong end, ulong tBase)
    {
        ulong es = t.EntrySize;
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
            else if (!t.Entries[i].IsNone)
            {
                // a leaf covering more than the range is only legal for hugetlb with aligned ranges
                ZapEntry(new PteRef(t, i, eStart));
            }
        }
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
            else if (!t.Entries[i].IsNone) visit(new PteRef(t, i, eStart));
        }
    }

    /// <summary>Replaces a leaf by a table of the next level whose entries map the same pages (a split), returning the new table.</summary>
    internal PageTable? SplitLeaf(MmStruct mm, PteRef r)
    {
        var e = r.Entry;
        var t = AllocTable(mm, r.Level - 1);
        if (t is null) return null;
        ulong sub = t.EntrySize;
        if (e.Present)
        {
            var f = Phys.FolioOf(e.Pfn)!;
            bool dirty = (e.Raw & Pte._PAGE_DIRTY) != 0;
            for (int i = 0; i < 512; i++)
            {
                var ne = Pte.Leaf(e.Pfn + (ulong)i * (sub >> Units.PAGE_SHIFT), t.Level != PtLevel.Pte, e.Writable);
                if (dirty) ne = new Pte(ne.Raw | Pte._PAGE_DIRTY);
                t.Set(i, ne);
                AddRmap(f, e.Pfn + (ulong)i * (sub >> Units.PAGE_SHIFT), sub, +1);
            }
            Stats.EntriesWritten += 512;
            AddRmap(f, e.Pfn, r.Size, -1);
        }
        else
        {
            for (int i = 0; i < 512; i++) t.Set(i, e.IsHwpoison ? Pte.Hwpoison(e.Pfn + (ulong)i * (sub >> Units.PAGE_SHIFT)) : e);
            Stats.EntriesWritten += 512;
        }
        r.Table.Set(r.Index, Pte.None);
        r.Table.SetChild(r.Index, t);
        Stats.EntriesWritten++;
        MmuNotifierInvalidate(mm, r.Va, r.Size); // secondary MMUs (EPT) drop their large mapping of the range
        return t;
    }
}

using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault;

// Models mm/hugetlb.c: pool sizing, allocation with reservations, free, dissolve.
public sealed partial class Kernel
{
    /// <summary>alloc_fresh_hugetlb_folio() + prep_new_hugetlb_folio(): a new hugetlb folio from the buddy allocator, or null.</summary>
    private Folio? AllocFreshHugetlbFolio(Hstate h)
    {
        var f = Phys.AllocFolio(h.Order);
        if (f is null) return null;
        f.Flags = f.Flags.With(PageFlags.PG_hugetlb);
        return f;
    }

    /// <summary>enqueue_hugetlb_folio(): onto the free list, marked freed.</summary>
    private void EnqueueHugetlbFolio(Hstate h, Folio f)
    {
        f.Flags = f.Flags.With(PageFlags.HugetlbFreed).Without(PageFlags.PG_dirty);
        f.Mapping = null; f.AnonVma = null; f.Content = null; f.RefCount = 0;
        f.Flags = f.Flags.Without(PageFlags.PG_anon);
        h.FreeList.Add(f);
        h.free_huge_pages++;
    }

    /// <summary>dequeue_hugetlb_folio_node_exact(): most recently freed first, skipping PG_hwpoison folios.</summary>
    private Folio? DequeueHugetlbFolio(Hstate h)
    {
        for (int i = h.FreeList.Count - 1; i >= 0; i--)
        {
            var f = h.FreeList[i];
            if (f.IsHwpoison) continue;
            h.FreeList.RemoveAt(i);
            h.free_huge_pages--;
            f.Flags = f.Flags.Without(PageFlags.HugetlbFreed);
            f.RefCount = 1;
            return f;
        }
        return null;
    }

    /// <summary>set_max_huge_pages(): grow with fresh pages (or by converting surplus), shrink by freeing free pages; in-use pages become surplus.</summary>
    public long SetNrHugepages(Hstate h, long count)
    {
        if (count < 0) return h.nr_huge_pages;
        // persistent pages = nr - surplus
        while (h.surplus_huge_pages > 0 && count > h.nr_huge_pages - h.surplus_huge_pages) h.surplus_huge_pages--;
        while (count > h.nr_huge_pages - h.surplus_huge_pages)
        {
            var f = AllocFreshHugetlbFolio(h);
            if (f is null) break;
            h.nr_huge_pages++;
            EnqueueHugetlbFolio(h, f);
        }
        // shrink: never below reserved + in-use (min_count in set_max_huge_pages)
        long minCount = h.resv_huge_pages + h.nr_huge_pages - h.free_huge_pages;
        long target = Math.Max(count, minCount);
        while (target < h.nr_huge_pages - h.surplus_huge_pages)
        {
            // remove_pool_hugetlb_folio(): any free folio, poisoned ones included (they get dissolved)
            if (h.FreeList.Count == 0) break;
            var f = h.FreeList[^1];
            h.FreeList.RemoveAt(h.FreeList.Count - 1);
            h.free_huge_pages--; h.nr_huge_pages--;
            UpdateAndFreeHugetlbFolio(h, f);
        }
        while (count < h.nr_huge_pages - h.surplus_huge_pages) h.surplus_huge_pages++; // adjust_pool_surplus()
        return h.nr_huge_pages;
    }

    /// <summary>
    /// __update_and_free_hugetlb_folio(): clears the hugetlb flag, moves PG_hwpoison from the head to each
    /// raw page recorded in raw_hwp (folio_clear_hugetlb_hwpoison), and frees the block to buddy; a folio
    /// whose raw_hwp list is unreliable is leaked forever.
    /// </summary>
    private void UpdateAndFreeHugetlbFolio(Hstate h, Folio f)
    {
        if (f.Flags.Has(PageFlags.RawHwpUnreliable)) { KAct($"folio {Units.Hex(f.Pfn)} raw_hwp_unreliable: leaked"); return; }
        bool poisoned = f.IsHwpoison;
        if (poisoned) Stats.PoisonedHugePagesDissolved++;
        foreach (var raw in f.RawHwp) Phys.SetRawHwpoison(raw);
        f.RawHwp.Clear();
        f.Flags = new PageFlags(0).WithOrder(f.Order);
        Phys.FreeFolio(f);
        if (poisoned) KAct($"dissolved {h.Name} folio {Units.Hex(f.Pfn)}: healthy pages back to buddy, raw poisoned pages quarantined");
    }

    /// <summary>dissolve_free_hugetlb_folio(): 0, or -EBUSY when in use or when the free page backs a reservation.</summary>
    internal int DissolveFreeHugetlbFolio(Folio f)
    {
        if (!f.IsHugetlb) return 0;
        var h = HstateOf(f);
        if (!f.Flags.Has(PageFlags.HugetlbFreed)) return -Errno.EBUSY;
        if (h.Available <= 0) return -Errno.EBUSY; // available_huge_pages(): needed for a reservation
        h.FreeList.Remove(f);
        h.free_huge_pages--; h.nr_huge_pages--;
        if (h.surplus_huge_pages > 0) h.surplus_huge_pages--;
        UpdateAndFreeHugetlbFolio(h, f);
        return 0;
    }

    internal Hstate HstateOf(Folio f) => f.Order == H1G.Order ? H1G : H2M;

    /// <summary>
    /// free_huge_folio(): the last reference went. Surplus (or temporary) folios are dissolved at once;
    /// others go back on the free list, poisoned or not (dequeue skips poisoned ones).
    /// </summary>
    internal void FreeHugeFolio(Folio f)
    {
        var h = HstateOf(f);
        f.Mapping = null; f.AnonVma = null;
        if (h.surplus_huge_pages > 0 || f.Flags.Has(PageFlags.HugetlbSurplus))
        {
            h.surplus_huge_pages = Math.Max(0, h.surplus_huge_pages - 1);
            h.nr_huge_pages--;
            UpdateAndFreeHugetlbFolio(h, f);
            return;
        }
        EnqueueHugetlbFolio(h, f);
    }

    /// <summary>Drops one reference; frees at zero (folio_put()).</summary>
    internal void FolioPut(Folio f)
    {
        f.RefCount--;
        if (f.RefCount > 0) return;
        if (f.IsHugetlb) FreeHugeFolio(f);
        else
        {
            f.Mapping = null; f.AnonVma = null; f.Content = null;
            if (f.IsHwpoison)
            {
                if (f.RawHwp.Count == 0) Phys.SetRawHwpoison(f.Pfn);
                foreach (var raw in f.RawHwp) Phys.SetRawHwpoison(raw);
            }
            f.Flags = new PageFlags(0).WithOrder(f.Order); Phys.FreeFolio(f); // the whole folio goes back to buddy, not its first 4 KiB
        }
    }

    /// <summary>
    /// alloc_hugetlb_folio(): use the reservation if there is one, else require an available page; fall back
    /// to a surplus page within nr_overcommit_hugepages. Null means VM_FAULT_SIGBUS (-ENOSPC).
    /// </summary>
    internal Folio? AllocHugetlbFolio(Hstate h, bool hasReservation)
    {
        if (!hasReservation && h.Available <= 0) return AllocSurplusHugetlbFolio(h);
        var f = DequeueHugetlbFolio(h);
        if (f is not null) { if (hasReservation) h.resv_huge_pages--; return f; }
        f = AllocSurplusHugetlbFolio(h);
        if (f is not null && hasReservation) h.resv_huge_pages--;
        return f;
    }

    /// <summary>alloc_surplus_hugetlb_folio(): a fresh folio counted as surplus, within the overcommit limit.</summary>
    private Folio? AllocSurplusHugetlbFolio(Hstate h)
    {
        if (h.surplus_huge_pages >= h.nr_overcommit_huge_pages) return null;
        var f = AllocFreshHugetlbFolio(h);
        if (f is null) return null;
        h.nr_huge_pages++; h.surplus_huge_pages++;
        f.RefCount = 1;
        return f;
    }

    /// <summary>hugetlb_acct_memory() via gather_surplus_pages(): promise delta pages, allocating surplus if needed; false = -ENOMEM.</summary>
    internal bool HugetlbAcctMemory(Hstate h, long delta)
    {
        if (delta <= 0) { h.resv_huge_pages += delta; return true; }
        long needed = h.resv_huge_pages + delta - h.free_huge_pages;
        if (needed > 0)
        {
            if (h.surplus_huge_pages + needed > h.nr_overcommit_huge_pages) return false;
            var got = new List<Folio>();
            for (long i = 0; i < needed; i++)
            {
                var f = AllocFreshHugetlbFolio(h);
                if (f is null) { foreach (var g in got) Phys.FreeFolio(g); return false; }
                got.Add(f);
            }
            foreach (var f in got) { h.nr_huge_pages++; h.surplus_huge_pages++; EnqueueHugetlbFolio(h, f); }
        }
        h.resv_huge_pages += delta;
        return true;
    }

    /// <summary>hugetlb_add_to_page_cache(): marks the folio dirty so generic code never drops it.</summary>
    internal void HugetlbAddToPageCache(Inode inode, ulong index, Folio f)
    {
        f.Mapping = inode; f.Index = index;
        f.Flags = f.Flags.With(PageFlags.PG_dirty);
        f.RefCount++; // the page cache's reference
        inode.PageCache[index] = f;
    }

    /// <summary>remove_inode_hugepages(): truncate/punch [start, end) of a hugetlbfs file.</summary>
    internal void RemoveInodeHugepages(Inode inode, ulong start, ulong end)
    {
        ulong fs = inode.FolioSize;
        ulong first = Units.AlignUp(start, fs) / fs, last = end == ulong.MaxValue ? ulong.MaxValue : end / fs;
        // hugetlb_vmdelete_list(): every VMA of the file loses the range, private COW copies included
        foreach (var v in inode.IMmap.ToList())
        {
            ulong vs = v.PgOff << Units.PAGE_SHIFT, ve = vs + v.Length;
            ulong s = Math.Max(vs, first * fs), e = last == ulong.MaxValue ? ve : Math.Min(ve, last * fs);
            if (s < e) ZapRange(v.Mm, v.Start + (s - vs), v.Start + (e - vs));
        }
        foreach (var idx in inode.PageCache.Keys.Where(i => i >= first && i < last).ToList())
        {
            var f = inode.PageCache[idx];
            UnmapFileFolio(inode, f);          // hugetlb_unmap_file_folio()
            inode.PageCache.Remove(idx);
            f.Mapping = null;                  // __filemap_remove_folio()
            FolioPut(f);                       // the page cache's reference
            Policy.OnFolioRemovedFromFile(this, inode, f);
        }
        // hugetlb_unreserve_pages(): reservations for the removed range go away
        if (inode.Hstate is { } h)
        {
            long n = inode.SharedResv.RemoveWhere(i => i >= first && i < last);
            if (n > 0) HugetlbAcctMemory(h, -n);
        }
    }
}

public sealed partial class Kernel
{
    /// <summary>Dissolves a free hugetlb folio regardless of reservations (used by proposals that offline poisoned folios).</summary>
    internal void ForceDissolve(Hstate h, Folio f)
    {
        if (!f.Flags.Has(PageFlags.HugetlbFreed)) return;
        h.FreeList.Remove(f);
        h.free_huge_pages--; h.nr_huge_pages--;
        if (h.surplus_huge_pages > 0) h.surplus_huge_pages--;
        if (h.resv_huge_pages > h.free_huge_pages) h.resv_huge_pages = h.free_huge_pages;
        UpdateAndFreeHugetlbFolio(h, f);
    }

    /// <summary>Removes one folio from a hugetlbfs file's page cache (as a hole punch of that folio does).</summary>
    internal void RemoveFileFolio(Inode inode, ulong idx)
    {
        ulong fs = inode.FolioSize;
        RemoveInodeHugepages(inode, idx * fs, (idx + 1) * fs);
    }
}

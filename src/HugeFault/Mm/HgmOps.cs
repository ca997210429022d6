using HugeFault.Mm;

namespace HugeFault;

// High-granularity mapping helpers (the hugetlb_pte walk of the HGM series: hugetlb_hgm_walk()/hugetlb_walk_step()),
// shared by the hgm, copy-around, vma-convert and repair policies.
public sealed partial class Kernel
{
    /// <summary>
    /// Splits the leaf covering va in mm down to an entry of 2^shift bytes, one level at a time, allocating a
    /// table per level (hugetlb_alloc_pmd/hugetlb_alloc_pte). Returns the entry of that size, or null if out of memory.
    /// Only the path to va is split: siblings stay large (511 × 2 MiB + 511 × 4 KiB for a 1 GiB leaf).
    /// </summary>
    internal PteRef? SplitToShift(MmStruct mm, ulong va, int shift)
    {
        while (true)
        {
            var r = Walk(mm, va);
            if (r.Shift <= shift) return r;
            if (r.Entry.IsNone)
            {
                // descend through empty entries by allocating the next table
                var t = AllocTable(mm, r.Level - 1);
                if (t is null) return null;
                r.Table.SetChild(r.Index, t);
                Stats.EntriesWritten++;
                continue;
            }
            if (SplitLeaf(mm, r) is null) return null;
            Act($"split {Units.Size(r.Size)} entry at {Units.Hex(r.Va)} of mm {mm.Id} into 512 x {Units.Size(r.Size >> 9)}");
        }
    }

    /// <summary>
    /// "hugetlb: split PTE markers when doing HGM walks" (HGM v2): a uffd-wp marker above the level an HGM walk needs is
    /// replaced by a table of markers of the next level, down to <paramref name="level"/>, so the protection of the
    /// untouched rest survives.
    /// </summary>
    internal void SplitMarkersDownTo(MmStruct mm, ulong va, PtLevel level)
    {
        while (true)
        {
            var r = Walk(mm, va);
            if (r.Level <= level || !r.Entry.IsUffdWpMarker) return;
            var t = AllocTable(mm, r.Level - 1);
            if (t is null) return;
            for (int i = 0; i < 512; i++) t.Set(i, Pte.UffdWpMarker());
            r.Table.SetChild(r.Index, t);
            Stats.EntriesWritten += 513;
        }
    }

    /// <summary>Replaces the 4 KiB entry mapping raw page rawPfn (at va) by a hwpoison entry, in mm; splits down to it first.</summary>
    internal bool PoisonSubpageMapping(MmStruct mm, ulong va, ulong rawPfn, bool marker = false)
    {
        var r = SplitToShift(mm, Units.AlignDown(va, Units.PAGE_SIZE), Units.PAGE_SHIFT);
        if (r is null) return false;
        var rr = r.Value;
        var e = rr.Entry;
        if (e.Present)
        {
            var f = Phys.FolioOf(e.Pfn);
            if (f is not null && (e.Raw & Pte._PAGE_DIRTY) != 0 && f.IsHugetlb) f.Flags = f.Flags.With(PageFlags.PG_dirty);
            ZapEntry(rr);
        }
        rr.Table.Set(rr.Index, marker ? Pte.PoisonMarker() : Pte.Hwpoison(rawPfn));
        Stats.EntriesWritten++;
        MmuNotifierInvalidate(mm, rr.Va, Units.PAGE_SIZE);
        return true;
    }

    /// <summary>
    /// Splits every leaf in [start, end) of mm down to 4 KiB (hgm-full-split, vma-convert): split_huge_pud()/
    /// split_huge_pmd() per leaf, walking the range once: after a PUD leaf becomes a PMD table each of its entries is
    /// split in turn, and a PTE table (already 4 KiB) is stepped over whole.
    /// </summary>
    internal void SplitRangeTo4K(MmStruct mm, ulong start, ulong end)
    {
        Folio? folio = null; // the folio of the last leaf split: a 1 GiB leaf's 512 PMD entries all map it
        for (ulong a = start; a < end; )
        {
            var r = Walk(mm, a);
            if (r.Shift > Units.PAGE_SHIFT && !r.Entry.IsNone)
            {
                var e = r.Entry;
                if (e.Present && (folio is null || !folio.ContainsPfn(e.Pfn))) folio = Phys.FolioOf(e.Pfn);
                var t = SplitLeaf(mm, r, folio);
                if (t is null) return;
                if (t.Level == PtLevel.Pte) continue;
                if (a == r.Va && r.Va + r.Size <= end && t.Level == PtLevel.Pmd && folio is not null && t.LinearRun is ({ Present: true }, _))
                {
                    if (!SplitEveryLeaf(mm, t, r.Va, folio)) return;
                    a = r.Va + r.Size;
                    continue;
                }
                // the new table's entries in [a, end), in address order, each split in turn (no walk from the top)
                for (int i = PageTable.Index(a, t.Level); i < Units.PTRS_PER_TABLE; i++)
                {
                    ulong va = r.Va + (ulong)i * t.EntrySize;
                    if (va >= end) return;
                    var sub = new PteRef(t, i, va);
                    if (sub.Entry.IsNone) continue;
                    if (SplitLeaf(mm, sub, folio) is null) return;
                }
                a = r.Va + r.Size;
                continue;
            }
            if (r.Shift > Units.PAGE_SHIFT) { a = r.Va + r.Size; continue; }
            a = Units.AlignDown(a, Units.PMD_SIZE) + Units.PMD_SIZE; // the rest of this PTE table is 4 KiB entries already
        }
    }

    /// <summary>
    /// Maps folio in vma at hva (its huge-aligned address) at huge size, then splits around each raw
    /// poisoned page so those 4 KiB get hwpoison entries (HGM's answer to a fault on a poisoned folio).
    /// </summary>
    internal bool MapAroundPoison(Vma vma, Folio folio, ulong hva, bool writable) =>
        MapAroundPages(vma, folio, hva, writable, folio.RawHwp, marker: false);

    /// <summary>
    /// The hugetlb_pte walk both HGM poison and copy-around's fake poison use: map the folio as large as
    /// possible and leave each page of <paramref name="holes"/> as a 4 KiB hwpoison entry or poison marker.
    /// </summary>
    internal bool MapAroundPages(Vma vma, Folio folio, ulong hva, bool writable, IReadOnlyCollection<ulong> holes, bool marker)
    {
        var level = folio.Order == H1G.Order ? PtLevel.Pud : PtLevel.Pmd;
        var r = WalkAlloc(vma.Mm, hva, level);
        if (r is null)
        {
            // a table already exists below: map each none 4 KiB entry in the range
            for (ulong a = hva; a < hva + folio.Size; a += Units.PAGE_SIZE)
            {
                var w = Walk(vma.Mm, a);
                if (!w.Entry.IsNone) { a = w.Va + w.Size - Units.PAGE_SIZE; continue; }
                ulong pfn = folio.Pfn + ((a - hva) >> Units.PAGE_SHIFT);
                if (holes.Contains(pfn)) { PoisonSubpageMapping(vma.Mm, a, pfn, marker); continue; }
                var leaf = WalkAlloc(vma.Mm, a, PtLevel.Pte);
                if (leaf is null) return false;
                InstallLeaf(leaf.Value, folio, pfn, writable, writable && vma.IsShared);
            }
            return true;
        }
        InstallLeaf(r.Value, folio, folio.Pfn, writable, writable && vma.IsShared);
        foreach (var raw in holes.ToList())
            if (!PoisonSubpageMapping(vma.Mm, hva + ((raw - folio.Pfn) << Units.PAGE_SHIFT), raw, marker)) return false;
        return true;
    }

    /// <summary>Every (vma, huge-aligned va) where the folio is mapped or could be faulted (file: every VMA of the file covering it).</summary>
    internal List<(Vma Vma, ulong Hva)> FolioMappings(Folio folio, bool onlyMapped)
    {
        var list = new List<(Vma, ulong)>();
        foreach (var v in RmapVmas(folio).OrderBy(v => v.Mm.Id).ThenBy(v => v.Start))
        {
            ulong? hva = null;
            if (folio.Mapping is { } m && !folio.IsAnon) hva = v.AddressOf(folio.Index * m.FolioSize);
            else hva = FindMappingAddress(folio, v);
            if (hva is null || hva.Value + folio.Size > v.End) continue;
            if (onlyMapped && FindMappingAddress(folio, v) is null) continue;
            list.Add((v, hva.Value));
        }
        return list;
    }

    /// <summary>
    /// MADV_SPLIT of the HGM series (enable_hugetlb_hgm()): shared hugetlb VMAs only (EINVAL otherwise); sets
    /// VM_HUGETLB_HGM for good, so userfaultfd reports 4 KiB fault addresses and UFFDIO_CONTINUE/COPY accept 4 KiB
    /// ranges. It does not split existing mappings.
    /// </summary>
    internal SysResult EnableHugetlbHgm(TaskStruct t, ulong start, ulong end)
    {
        var vmas = t.Mm.Vmas.Where(v => v.Start < end && v.End > start).ToList();
        if (vmas.Count == 0 || vmas.Any(v => !v.IsHugetlb || !v.IsShared)) return SysResult.Err(Errno.EINVAL);
        foreach (var v in vmas) v.Flags |= VmFlags.VM_HUGETLB_HGM;
        return SysResult.Ok();
    }

    /// <summary>
    /// MADV_COLLAPSE on shared hugetlb (hugetlb_collapse() of the HGM series): every huge-aligned range whose folio is
    /// in the page cache and not mapped whole is zapped and remapped by one PUD/PMD leaf. A poisoned folio is left as
    /// it is; the return value then differs by design: <paramref name="poisonedFails"/> = EBUSY (the intended 4 KiB
    /// design keeps its hole), else 0 (the series as posted: "MADV_COLLAPSE skips poisoned folios", hugetlb-hgm.c
    /// expects success). Returns the result and the number of folios left alone.
    /// </summary>
    internal SysResult HugetlbCollapse(TaskStruct t, ulong start, ulong end, bool poisonedFails)
    {
        var vmas = t.Mm.Vmas.Where(v => v.Start < end && v.End > start).ToList();
        if (vmas.Count == 0 || vmas.Any(v => !v.IsHugetlb || !v.IsShared)) return SysResult.Err(Errno.EINVAL);
        bool refused = false;
        foreach (var v in vmas)
        {
            var h = v.Hstate!;
            for (ulong hva = Units.AlignUp(Math.Max(start, v.Start), h.Size); hva + h.Size <= Math.Min(end, v.End); hva += h.Size)
            {
                var inode = v.File!;
                if (!inode.PageCache.TryGetValue(v.FileOffset(hva) >> h.Shift, out var folio)) continue;
                var top = Walk(v.Mm, hva);
                if (top.Shift == h.Shift && top.Entry.Present) continue;
                if (folio.IsHwpoison)
                {
                    refused = true;
                    Act(poisonedFails ? $"MADV_COLLAPSE refused at {Units.Hex(hva)}: folio has {folio.RawHwp.Count} poisoned subpage(s)"
                        : $"MADV_COLLAPSE skips {Units.Hex(hva)}: folio has {folio.RawHwp.Count} poisoned subpage(s), its mappings stay as they are");
                    continue;
                }
                long before = Stats.MapcountUpdates;
                ZapRange(v.Mm, hva, hva + h.Size);
                var r = WalkAlloc(v.Mm, hva, h.Order == H1G.Order ? PtLevel.Pud : PtLevel.Pmd);
                if (r is null) return SysResult.Err(Errno.ENOMEM);
                bool w = (v.Flags & VmFlags.VM_WRITE) != 0;
                InstallLeaf(r.Value, folio, folio.Pfn, w, w);
                Act($"MADV_COLLAPSE {Units.Size(h.Size)} at {Units.Hex(hva)}: {Stats.MapcountUpdates - before} mapcount updates");
            }
        }
        return refused && poisonedFails ? SysResult.Err(Errno.EBUSY) : SysResult.Ok();
    }
}

namespace HugeFault.Mm;

/// <summary>What one run of identical page-table leaves maps.</summary>
public enum LeafKind : byte
{
    /// <summary>A present leaf over healthy memory.</summary>
    Present = 0,
    /// <summary>A present leaf whose folio has hardware-poisoned raw pages inside it (keep-mapped: still mapped).</summary>
    PresentPoisoned = 1,
    /// <summary>A hwpoison swap entry (make_hwpoison_entry()): every touch is a memory-failure SIGBUS.</summary>
    Hwpoison = 2,
    /// <summary>A PTE marker PTE_MARKER_POISONED (UFFDIO_POISON, or fake poison after a migration or copy-around).</summary>
    PoisonMarker = 3,
    /// <summary>Any other non-present entry (swap, migration).</summary>
    Other = 4,
}

/// <summary>Consecutive leaves [Start, End) of one level and kind (a fully split 1 GiB mapping is a few runs, not 262,144 items).</summary>
public readonly record struct LeafRun(ulong Start, ulong End, PtLevel Level, LeafKind Kind)
{
    public ulong EntrySize => Level switch { PtLevel.Pud => Units.PUD_SIZE, PtLevel.Pmd => Units.PMD_SIZE, _ => Units.PAGE_SIZE };
    public ulong Entries => (End - Start) / EntrySize;
}

/// <summary>The leaves of one VMA, and the virtual addresses of 4 KiB pages that are poisoned but still mapped.</summary>
public sealed record VmaSnapshot(string Name, ulong Start, ulong End, bool Hugetlb, bool Shared, IReadOnlyList<LeafRun> Runs, IReadOnlyList<ulong> PoisonedMapped);

/// <summary>One address space: its tasks (comm) and VMAs.</summary>
public sealed record MmSnapshot(int MmId, string Tasks, IReadOnlyList<VmaSnapshot> Vmas);

/// <summary>
/// A read-only picture of every live process's page tables (for the report): walks the existing page-table pages
/// like pagemap does (walk_page_range()), so the cost is one visit per leaf, and merges equal neighbours.
/// </summary>
public sealed record PageTableSnapshot(IReadOnlyList<MmSnapshot> Mms)
{
    public static PageTableSnapshot Take(Kernel k)
    {
        var mms = new List<MmSnapshot>();
        foreach (var g in k.Tasks.Where(t => t.Alive).GroupBy(t => t.Mm).OrderBy(g => g.Key.Id))
        {
            var vmas = new List<VmaSnapshot>();
            foreach (var v in g.Key.Vmas.OrderBy(v => v.Start))
            {
                var runs = new List<LeafRun>();
                var poisoned = new List<ulong>();
                k.ForEachLeaf(g.Key, v.Start, v.End, r =>
                {
                    var e = r.Entry;
                    ulong start = Math.Max(r.Va, v.Start), end = Math.Min(r.Va + r.Size, v.End);
                    var kind = e.Present ? LeafKind.Present : e.IsHwpoison ? LeafKind.Hwpoison : e.IsPoisonMarker ? LeafKind.PoisonMarker : LeafKind.Other;
                    if (e.Present && k.Phys.FolioOf(e.Pfn) is { IsHwpoison: true } f)
                    {
                        ulong pages = r.Size >> Units.PAGE_SHIFT;
                        foreach (var raw in f.RawHwp)
                            if (raw >= e.Pfn && raw < e.Pfn + pages) { poisoned.Add(r.Va + ((raw - e.Pfn) << Units.PAGE_SHIFT)); kind = LeafKind.PresentPoisoned; }
                    }
                    if (runs.Count > 0 && runs[^1] is var last && last.End == start && last.Level == r.Level && last.Kind == kind)
                        runs[^1] = last with { End = end };
                    else runs.Add(new LeafRun(start, end, r.Level, kind));
                });
                poisoned.Sort();
                vmas.Add(new VmaSnapshot(v.Name, v.Start, v.End, v.Hstate is not null, v.IsShared, runs, poisoned));
            }
            mms.Add(new MmSnapshot(g.Key.Id, string.Join(",", g.Select(t => t.Comm).Distinct()), vmas));
        }
        return new PageTableSnapshot(mms);
    }
}

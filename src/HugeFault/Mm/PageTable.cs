namespace HugeFault.Mm;

/// <summary>Page-table levels of x86-64 4-level paging.</summary>
public enum PtLevel { Pte = 1, Pmd = 2, Pud = 3, Pgd = 4 }

/// <summary>
/// One page-table page: 512 entries, backed by a 4 KiB frame taken from the buddy allocator
/// (pte_alloc_one()/pmd_alloc_one()/pud_alloc_one()), so page-table memory is real, counted memory.
/// </summary>
public sealed class PageTable
{
    public PageTable(Folio backing, PtLevel level) { Backing = backing; Level = level; }

    public Folio Backing { get; }
    public ulong Pfn => Backing.Pfn;
    public PtLevel Level { get; }
    public readonly Pte[] Entries = new Pte[Units.PTRS_PER_TABLE];
    private PageTable?[]? _children;
    /// <summary>Non-none entries (so empty tables can be freed, like free_pgtables()).</summary>
    public int Used { get; private set; }

    /// <summary>Bytes mapped by one entry of this table.</summary>
    public ulong EntrySize => 1UL << EntryShift;
    public int EntryShift => Units.PAGE_SHIFT + 9 * ((int)Level - 1);

    public static int Index(ulong va, PtLevel level) => (int)((va >> (Units.PAGE_SHIFT + 9 * ((int)level - 1))) & 511);

    public PageTable? Child(int i) => _children?[i];

    public void Set(int i, Pte e)
    {
        bool wasNone = Entries[i].IsNone;
        Entries[i] = e;
        if (wasNone && !e.IsNone) Used++;
        else if (!wasNone && e.IsNone) Used--;
    }

    public void SetChild(int i, PageTable t)
    {
        (_children ??= new PageTable?[Units.PTRS_PER_TABLE])[i] = t;
        Set(i, Pte.Table(t.Pfn));
    }

    public PageTable? DetachChild(int i)
    {
        var t = _children?[i];
        if (t is null) return null;
        _children![i] = null;
        Set(i, Pte.None);
        return t;
    }

    /// <summary>True if entry i points to a lower-level table (present, not a leaf).</summary>
    public bool IsTable(int i) => _children?[i] is not null;
}

/// <summary>A located entry: the table holding it, its index, its level and the VA it maps (aligned).</summary>
public readonly record struct PteRef(PageTable Table, int Index, ulong Va)
{
    public Pte Entry => Table.Entries[Index];
    public PtLevel Level => Table.Level;
    public int Shift => Table.EntryShift;
    public ulong Size => Table.EntrySize;
}

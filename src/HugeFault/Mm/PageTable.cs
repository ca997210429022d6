namespace HugeFault.Mm;

/// <summary>Page-table levels of x86-64 4-level paging.</summary>
public enum PtLevel { Pte = 1, Pmd = 2, Pud = 3, Pgd = 4 }

/// <summary>
/// One page-table page: 512 entries, backed by a 4 KiB frame taken from the buddy allocator
/// (pte_alloc_one()/pmd_alloc_one()/pud_alloc_one()), so page-table memory is real, counted memory.
/// <para>
/// The model keeps the entries in one of two forms. A table just filled by a split (a leaf replaced by 512 entries
/// mapping the same pages one level down: __split_huge_pmd_locked(), the HGM split) holds entries that form an
/// arithmetic run, entry i = first + i × step (step = the pfn advance of one entry, 0 for a table of equal markers);
/// such a table is stored as those two numbers, not as 512 entries. The first write that breaks the run
/// materialises the 512-entry array. Readers see the same entries either way; <see cref="LinearRun"/> lets range
/// walks treat a whole run table at once.
/// </para>
/// </summary>
public sealed class PageTable
{
    public PageTable(Folio backing, PtLevel level) { Backing = backing; Level = level; }

    public Folio Backing { get; }
    public ulong Pfn => Backing.Pfn;
    public PtLevel Level { get; }
    private Pte[]? _entries;
    /// <summary>The run form while <see cref="_entries"/> is null: entry i = _first + i × _step (all none when _first is 0).</summary>
    private ulong _first, _step;
    private PageTable?[]? _children;
    /// <summary>Non-none entries (so empty tables can be freed, like free_pgtables()).</summary>
    public int Used { get; private set; }

    /// <summary>The entries, indexable: <c>t.Entries[i]</c>.</summary>
    public EntryView Entries => new(this);

    /// <summary>Bytes mapped by one entry of this table.</summary>
    public ulong EntrySize => 1UL << EntryShift;
    public int EntryShift => Units.PAGE_SHIFT + 9 * ((int)Level - 1);

    public static int Index(ulong va, PtLevel level) => (int)((va >> (Units.PAGE_SHIFT + 9 * ((int)level - 1))) & 511);

    /// <summary>Entry i.</summary>
    public Pte Get(int i) => _entries is { } e ? e[i] : _first == 0 ? Pte.None : new Pte(_first + (ulong)i * _step);

    /// <summary>When every entry is one arithmetic run of non-none entries: the first and the raw step; else null.</summary>
    public (Pte First, ulong Step)? LinearRun => _entries is null && _first != 0 ? (new Pte(_first), _step) : null;

    /// <summary>True if the 512 entries are stored as the run form (no entry array): for the memory accounting and tests.</summary>
    public bool IsCompact => _entries is null;

    public PageTable? Child(int i) => _children?[i];

    public void Set(int i, Pte e)
    {
        if (_entries is null)
        {
            if (e.Raw == (_first == 0 ? 0 : _first + (ulong)i * _step)) return; // the run already holds it
            Materialise();
        }
        bool wasNone = _entries![i].IsNone;
        _entries[i] = e;
        if (wasNone && !e.IsNone) Used++;
        else if (!wasNone && e.IsNone) Used--;
    }

    /// <summary>Fills an empty table with the run first, first + step, … (a split): two numbers, not 512 stores.</summary>
    public void SetLinear(Pte first, ulong step)
    {
        if (Used != 0 || first.IsNone || _children is not null) throw new InvalidOperationException("SetLinear needs an empty leaf table and a non-none first entry");
        _entries = null;
        _first = first.Raw; _step = step;
        Used = Units.PTRS_PER_TABLE;
    }

    /// <summary>Every entry none again (a zapped table, about to be freed or refilled).</summary>
    public void Clear()
    {
        if (_children is not null) throw new InvalidOperationException("Clear is for leaf tables");
        _entries = null;
        _first = _step = 0;
        Used = 0;
    }

    private void Materialise()
    {
        var a = new Pte[Units.PTRS_PER_TABLE];
        if (_first != 0)
            for (int i = 0; i < a.Length; i++) a[i] = new Pte(_first + (ulong)i * _step);
        _entries = a;
        _first = _step = 0;
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

    /// <summary>Managed bytes this table costs the model (the entry array only once materialised).</summary>
    public long ApproxBytes => 64 + (_entries is null ? 0 : 8L * Units.PTRS_PER_TABLE + 16) + (_children is null ? 0 : 8L * Units.PTRS_PER_TABLE + 16);

    /// <summary>Indexer over a table's entries.</summary>
    public readonly struct EntryView(PageTable t)
    {
        public Pte this[int i] => t.Get(i);
    }
}

/// <summary>A located entry: the table holding it, its index, its level and the VA it maps (aligned).</summary>
public readonly record struct PteRef(PageTable Table, int Index, ulong Va)
{
    public Pte Entry => Table.Get(Index);
    public PtLevel Level => Table.Level;
    public int Shift => Table.EntryShift;
    public ulong Size => Table.EntrySize;
}

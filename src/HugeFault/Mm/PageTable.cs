namespace HugeFault.Mm;

/// <summary>Page-table levels of x86-64 4-level paging.</summary>
public enum PtLevel { Pte = 1, Pmd = 2, Pud = 3, Pgd = 4 }

/// <summary>
/// One page-table page: 512 entries, backed by a 4 KiB frame taken from the buddy allocator
/// (pte_alloc_one()/pmd_alloc_one()/pud_alloc_one()), so page-table memory is real, counted memory.
/// <para>
/// The model keeps the entries in one of two forms. A table just filled by a split (a leaf replaced by 512 entries
/// mapping the same pages one level down: __split_huge_pmd_locked(), the HGM split) holds entries that form an
/// arithmetic run, entry i = first + i × step (step = the pfn advance of one entry, 0 for a table of equal markers,
/// first = 0 for an empty table); such a table is stored as those two numbers plus the few entries written since that
/// differ from the run (an HGM split's one table pointer or hwpoison entry), not as 512 entries. When more than
/// <see cref="MaxExceptions"/> entries differ the 512-entry array is materialised. Readers see the same entries either
/// way; <see cref="LinearRun"/> lets range walks treat a whole run table at once. Child tables are kept the same way:
/// a few (index, table) pairs, or a 512-slot array once there are more.
/// </para>
/// <para>
/// A PMD table whose 512 leaves were all split to 4 KiB at once (hgm-full-split, vma-convert: 512 PTE pages per 1 GiB
/// mapping, allocated and counted as the kernel allocates them) may hold its children in a third form
/// (<see cref="SetPendingChildren"/>): its entries are the run of table pointers to 512 consecutive page-table pages, and
/// child i, which holds the run of 4 KiB entries its former leaf i maps, is made as an object only when someone asks
/// for it (<see cref="Child"/>: a walk through it, a write to it). Until then it is the pfn of its page and one bit.
/// </para>
/// </summary>
public sealed class PageTable
{
    /// <summary>Entries differing from the run (and child tables) kept as pairs before the arrays are materialised.</summary>
    public const int MaxExceptions = 8;

    public PageTable(Folio backing, PtLevel level) { _backing = backing; Pfn = backing.Pfn; Level = level; }

    /// <summary>A table in a page of <paramref name="phys"/> from <see cref="PhysicalMemory.AllocPageTablePage"/>, whose folio is looked up only when asked for.</summary>
    public PageTable(PhysicalMemory phys, ulong pfn, PtLevel level) { _backing = phys; Pfn = pfn; Level = level; }

    /// <summary>The page-table page's folio (page_ptdesc()'s struct page); the allocator makes it when first asked.</summary>
    public Folio Backing => _backing switch
    {
        Folio f => f,
        PhysicalMemory p => (Folio)(_backing = p.FolioOf(Pfn) ?? throw new InvalidOperationException($"page-table page {Units.Hex(Pfn)} is not allocated")),
        // freed before anyone asked: the folio it had, which is no longer the allocator's (the pfn may be someone else's now)
        _ => (Folio)(_backing = new Folio(Pfn, 0)),
    };
    /// <summary>The folio; the allocator until the folio is asked for; <see cref="FreedUnmade"/> once freed without it.</summary>
    private object _backing;
    private static readonly object FreedUnmade = new();

    /// <summary>pagetable_free() is about to give the page back: a folio never made stays this table's own, not the pfn's next owner's.</summary>
    internal void Freeing()
    {
        if (_backing is PhysicalMemory) _backing = FreedUnmade;
    }
    public ulong Pfn { get; }
    public PtLevel Level { get; }
    private Pte[]? _entries;
    /// <summary>The run form while <see cref="_entries"/> is null: entry i = _first + i × _step (all none when _first is 0), except <see cref="_ex"/>.</summary>
    private ulong _first, _step;
    /// <summary>Entries that differ from the run (index, raw), unordered; <see cref="_exN"/> in use.</summary>
    private (int Index, ulong Raw)[]? _ex;
    private int _exN;
    private PageTable?[]? _children;
    /// <summary>Child tables while <see cref="_children"/> is null (index, table), unordered.</summary>
    private (int Index, PageTable Table)[]? _kids;
    private int _kidN;
    /// <summary>Children not yet made (see <see cref="SetPendingChildren"/>); null when there are none.</summary>
    private PendingChildren? _pending;

    /// <summary>
    /// Child i (bit i of <see cref="Bits"/>) is a PTE table in page <see cref="FirstPfn"/> + i whose entries are the 4 KiB
    /// run of the leaf <see cref="LeafFirst"/> + i × <see cref="LeafStep"/> this table held before the split.
    /// </summary>
    private sealed class PendingChildren(PhysicalMemory phys, ulong firstPfn, Pte leafFirst, ulong leafStep)
    {
        public readonly PhysicalMemory Phys = phys;
        public readonly ulong FirstPfn = firstPfn, LeafStep = leafStep;
        public readonly Pte LeafFirst = leafFirst;
        public readonly ulong[] Bits = [~0UL, ~0UL, ~0UL, ~0UL, ~0UL, ~0UL, ~0UL, ~0UL];
        public int Count = Units.PTRS_PER_TABLE;
        public bool Has(int i) => (Bits[i >> 6] & (1UL << (i & 63))) != 0;
    }
    /// <summary>Non-none entries (so empty tables can be freed, like free_pgtables()).</summary>
    public int Used { get; private set; }

    /// <summary>The entries, indexable: <c>t.Entries[i]</c>.</summary>
    public EntryView Entries => new(this);

    /// <summary>Bytes mapped by one entry of this table.</summary>
    public ulong EntrySize => 1UL << EntryShift;
    public int EntryShift => Units.PAGE_SHIFT + 9 * ((int)Level - 1);

    public static int Index(ulong va, PtLevel level) => (int)((va >> (Units.PAGE_SHIFT + 9 * ((int)level - 1))) & 511);

    /// <summary>Entry i.</summary>
    public Pte Get(int i)
    {
        if (_entries is { } e) return e[i];
        for (int k = 0; k < _exN; k++) if (_ex![k].Index == i) return new Pte(_ex[k].Raw);
        return RunAt(i);
    }

    private Pte RunAt(int i) => _first == 0 ? Pte.None : new Pte(_first + (ulong)i * _step);

    /// <summary>When every entry is one arithmetic run of non-none entries: the first and the raw step; else null.</summary>
    public (Pte First, ulong Step)? LinearRun => _entries is null && _first != 0 && _exN == 0 && _pending is null && _kidN == 0 && _children is null ? (new Pte(_first), _step) : null;

    /// <summary>True if the 512 entries are stored as the run form (no entry array): for the memory accounting and tests.</summary>
    public bool IsCompact => _entries is null;

    public PageTable? Child(int i)
    {
        if (_children is { } c) return c[i] ?? MakePending(i);
        for (int k = 0; k < _kidN; k++) if (_kids![k].Index == i) return _kids[k].Table;
        return MakePending(i);
    }

    /// <summary>
    /// Replaces this table's 512 present leaves (a run: entry i = first + i × step, as a split just left them) by pointers
    /// to the 512 consecutive page-table pages from <paramref name="firstTablePfn"/> on, child i holding the 4 KiB
    /// entries of former leaf i (<see cref="SplitRun"/>); the children are made when first asked for.
    /// </summary>
    public void SetPendingChildren(PhysicalMemory phys, ulong firstTablePfn)
    {
        if (LinearRun is not ({ Present: true } first, ulong step) || Level == PtLevel.Pte)
            throw new InvalidOperationException("SetPendingChildren needs a table of 512 present leaves in one run and no children");
        _pending = new PendingChildren(phys, firstTablePfn, first, step);
        _first = Pte.Table(firstTablePfn).Raw;
        _step = Units.PAGE_SIZE; // Pte.Table(pfn + i): the pfn field advances by one page per entry
    }

    /// <summary>
    /// The first entry and step of the table a leaf <paramref name="e"/> of this level splits into (__split_huge_pmd_locked(),
    /// the HGM split): the same pages one level down, writable and dirty bits kept; a hwpoison entry becomes hwpoison
    /// entries for its pages, a marker 512 equal markers.
    /// </summary>
    public static (Pte First, ulong Step) SplitRun(Pte e, PtLevel childLevel)
    {
        ulong sub = 1UL << (Units.PAGE_SHIFT + 9 * ((int)childLevel - 1));
        if (!e.Present) return e.IsHwpoison ? (Pte.Hwpoison(e.Pfn), sub) : (e, 0);
        var first = Pte.Leaf(e.Pfn, childLevel != PtLevel.Pte, e.Writable);
        if ((e.Raw & Pte._PAGE_DIRTY) != 0) first = new Pte(first.Raw | Pte._PAGE_DIRTY);
        return (first, sub);
    }

    /// <summary>Makes pending child i (if it is one) and files it as an ordinary child.</summary>
    private PageTable? MakePending(int i)
    {
        if (_pending is not { } p || !p.Has(i)) return null;
        p.Bits[i >> 6] &= ~(1UL << (i & 63));
        if (--p.Count == 0) _pending = null;
        var t = new PageTable(p.Phys, p.FirstPfn + (ulong)i, Level - 1);
        var (first, step) = SplitRun(new Pte(p.LeafFirst.Raw + (ulong)i * p.LeafStep), Level - 1);
        t.SetLinear(first, step);
        SetChild(i, t); // the entry already points to it
        return t;
    }

    public void Set(int i, Pte e)
    {
        if (_pending is not null) MakePending(i); // the entry changes under a pending child: make it first
        if (_entries is null)
        {
            var old = Get(i);
            if (e.Raw == old.Raw) return;
            Count(old, e);
            int at = -1;
            for (int k = 0; k < _exN; k++) if (_ex![k].Index == i) { at = k; break; }
            if (e.Raw == RunAt(i).Raw) { if (at >= 0) _ex![at] = _ex[--_exN]; return; } // back to what the run says
            if (at >= 0) { _ex![at] = (i, e.Raw); return; }
            if (_exN < MaxExceptions) { (_ex ??= new (int, ulong)[MaxExceptions])[_exN++] = (i, e.Raw); return; }
            Materialise();
            _entries![i] = e;
            return;
        }
        Count(_entries[i], e);
        _entries[i] = e;
    }

    private void Count(Pte old, Pte e)
    {
        if (old.IsNone && !e.IsNone) Used++;
        else if (!old.IsNone && e.IsNone) Used--;
    }

    /// <summary>Fills an empty table with the run first, first + step, … (a split): two numbers, not 512 stores.</summary>
    public void SetLinear(Pte first, ulong step)
    {
        if (Used != 0 || first.IsNone || _children is not null || _kidN != 0 || _pending is not null) throw new InvalidOperationException("SetLinear needs an empty leaf table and a non-none first entry");
        _entries = null;
        _exN = 0;
        _first = first.Raw; _step = step;
        Used = Units.PTRS_PER_TABLE;
    }

    /// <summary>Every entry none again (a zapped table, about to be freed or refilled).</summary>
    public void Clear()
    {
        if (_children is not null || _kidN != 0 || _pending is not null) throw new InvalidOperationException("Clear is for leaf tables");
        _entries = null;
        _first = _step = 0;
        _exN = 0;
        Used = 0;
    }

    private void Materialise()
    {
        var a = new Pte[Units.PTRS_PER_TABLE];
        if (_first != 0)
            for (int i = 0; i < a.Length; i++) a[i] = new Pte(_first + (ulong)i * _step);
        for (int k = 0; k < _exN; k++) a[_ex![k].Index] = new Pte(_ex[k].Raw);
        _entries = a;
        _first = _step = 0;
        _exN = 0; _ex = null;
    }

    public void SetChild(int i, PageTable t)
    {
        if (_children is { } c) c[i] = t;
        else
        {
            int at = -1;
            for (int k = 0; k < _kidN; k++) if (_kids![k].Index == i) { at = k; break; }
            if (at >= 0) _kids![at] = (i, t);
            else if (_kidN < MaxExceptions) (_kids ??= new (int, PageTable)[MaxExceptions])[_kidN++] = (i, t);
            else
            {
                var all = new PageTable?[Units.PTRS_PER_TABLE];
                for (int k = 0; k < _kidN; k++) all[_kids![k].Index] = _kids[k].Table;
                all[i] = t;
                _children = all; _kids = null; _kidN = 0;
            }
        }
        Set(i, Pte.Table(t.Pfn));
    }

    public PageTable? DetachChild(int i)
    {
        MakePending(i);
        PageTable? t = null;
        if (_children is { } c) { t = c[i]; c[i] = null; }
        else
            for (int k = 0; k < _kidN; k++)
                if (_kids![k].Index == i) { t = _kids[k].Table; _kids[k] = _kids[--_kidN]; _kids[_kidN] = default; break; }
        if (t is null) return null;
        Set(i, Pte.None);
        return t;
    }

    /// <summary>True if entry i points to a lower-level table (present, not a leaf).</summary>
    public bool IsTable(int i) => _pending?.Has(i) == true || Child(i) is not null;

    /// <summary>Managed bytes this table costs the model (the entry and child arrays only once materialised).</summary>
    public long ApproxBytes => 96 + (_entries is null ? 0 : 8L * Units.PTRS_PER_TABLE + 16) + (_children is null ? 0 : 8L * Units.PTRS_PER_TABLE + 16)
        + (_ex is null ? 0 : 16L * MaxExceptions + 16) + (_kids is null ? 0 : 16L * MaxExceptions + 16) + (_pending is null ? 0 : 160);

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

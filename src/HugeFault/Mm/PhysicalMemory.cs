namespace HugeFault.Mm;

/// <summary>Kinds of hardware poison in a cacheline (design-debate.md "Kinds of poison").</summary>
public enum PoisonKind
{
    /// <summary>The cell is broken: rewriting does not help.</summary>
    Permanent,
    /// <summary>A particle flipped bits: rewriting the line repairs it.</summary>
    Transient,
    /// <summary>Poison carried in from outside the memory controller: DRAM is fine, rewriting repairs it.</summary>
    Deposited,
}

/// <summary>
/// The host's physical memory: 4 KiB frames handed out by a binary buddy allocator (orders 0..18),
/// allocated folios by head pfn, raw pages quarantined with PG_hwpoison, and hardware-poisoned cachelines.
/// Memory is sparse: state exists only for allocated folios and poisoned pages, so a 4 TiB host costs little.
/// </summary>
public sealed class PhysicalMemory
{
    private readonly SortedSet<ulong>[] _free = new SortedSet<ulong>[Units.MAX_ORDER + 1];
    private readonly Dictionary<ulong, Folio> _folios = new();
    private readonly SortedSet<ulong> _rawHwpoison = new();
    private readonly SortedDictionary<ulong, PoisonKind> _poisonLines = new();
    private readonly SortedSet<ulong> _poisonLineSet = new();

    public PhysicalMemory(ulong bytes)
    {
        if (bytes < Units.GiB || bytes % Units.GiB != 0) throw new ArgumentOutOfRangeException(nameof(bytes), "host memory must be a whole number of GiB");
        TotalPages = bytes >> Units.PAGE_SHIFT;
        for (int o = 0; o <= Units.MAX_ORDER; o++) _free[o] = new SortedSet<ulong>();
        for (ulong pfn = 0; pfn < TotalPages; pfn += 1UL << Units.MAX_ORDER) _free[Units.MAX_ORDER].Add(pfn);
        FreePages = TotalPages;
    }

    public ulong TotalPages { get; }
    public ulong FreePages { get; private set; }
    public ulong Bytes => TotalPages << Units.PAGE_SHIFT;
    public IReadOnlyDictionary<ulong, Folio> Folios => _folios;
    public IReadOnlyCollection<ulong> RawHwpoisonPages => _rawHwpoison;

    /// <summary>__alloc_pages(): the lowest free block of the order (deterministic), splitting larger blocks.</summary>
    public Folio? AllocFolio(int order)
    {
        int o = order;
        while (o <= Units.MAX_ORDER && _free[o].Count == 0) o++;
        if (o > Units.MAX_ORDER) return null;
        ulong pfn = _free[o].Min;
        _free[o].Remove(pfn);
        while (o > order) { o--; _free[o].Add(pfn + (1UL << o)); } // expand(): upper halves go back
        FreePages -= 1UL << order;
        var f = new Folio(pfn, order);
        _folios.Add(pfn, f);
        return f;
    }

    /// <summary>Frees a folio's block to buddy, merging with free buddies (__free_one_page()), except raw pages under quarantine.</summary>
    public void FreeFolio(Folio f)
    {
        if (!_folios.Remove(f.Pfn)) throw new InvalidOperationException($"double free of {f}");
        // free_pages_prepare(): an order-0 page with PG_hwpoison never reaches buddy (page-table pages included)
        if (f.Order == 0 && f.IsHwpoison) _rawHwpoison.Add(f.Pfn);
        // Only healthy pages go back: a block containing quarantined raw pages is freed page by page
        // around them (this is what Jiaqi Yan's "only free healthy pages" proposal does; mainline frees the
        // block and then takes the raw page off buddy, with a race window we do not model).
        var bad = _rawHwpoison.GetViewBetween(f.Pfn, f.Pfn + f.NrPages - 1);
        if (bad.Count == 0) { FreeBlock(f.Pfn, f.Order); return; }
        FreeRangeAround(f.Pfn, f.Pfn + f.NrPages, bad.ToArray());
    }

    private void FreeRangeAround(ulong start, ulong end, ulong[] bad)
    {
        ulong cur = start;
        foreach (var b in bad) { FreeRange(cur, b); cur = b + 1; }
        FreeRange(cur, end);
    }

    /// <summary>Frees [start, end) as maximal aligned buddy blocks.</summary>
    private void FreeRange(ulong start, ulong end)
    {
        while (start < end)
        {
            int o = 0;
            while (o < Units.MAX_ORDER && (start & ((1UL << (o + 1)) - 1)) == 0 && start + (1UL << (o + 1)) <= end) o++;
            FreeBlock(start, o);
            start += 1UL << o;
        }
    }

    private void FreeBlock(ulong pfn, int order)
    {
        FreePages += 1UL << order;
        while (order < Units.MAX_ORDER)
        {
            ulong buddy = pfn ^ (1UL << order);
            if (!_free[order].Remove(buddy)) break;
            pfn = Math.Min(pfn, buddy);
            order++;
        }
        _free[order].Add(pfn);
    }

    /// <summary>Number of free blocks per order (for /proc/buddyinfo-like output and tests).</summary>
    public int FreeBlocks(int order) => _free[order].Count;

    /// <summary>Finds the allocated folio containing pfn (page_folio()).</summary>
    public Folio? FolioOf(ulong pfn)
    {
        // folios are naturally aligned: probe the orders in use
        if (_folios.TryGetValue(pfn, out var f)) return f;
        if (_folios.TryGetValue(pfn & ~((1UL << 9) - 1), out f) && f.ContainsPfn(pfn)) return f;
        if (_folios.TryGetValue(pfn & ~((1UL << 18) - 1), out f) && f.ContainsPfn(pfn)) return f;
        return null;
    }

    public bool IsFreePfn(ulong pfn)
    {
        for (int o = 0; o <= Units.MAX_ORDER; o++)
            if (_free[o].Contains(pfn & ~((1UL << o) - 1))) return true;
        return false;
    }

    /// <summary>take_page_off_buddy(): removes one free 4 KiB page from the allocator (splitting its block).</summary>
    public bool TakePageOffBuddy(ulong pfn)
    {
        for (int o = 0; o <= Units.MAX_ORDER; o++)
        {
            ulong head = pfn & ~((1UL << o) - 1);
            if (!_free[o].Remove(head)) continue;
            FreePages -= 1UL << o;
            // give back everything but pfn
            if (head < pfn) FreeRange(head, pfn);
            if (pfn + 1 < head + (1UL << o)) FreeRange(pfn + 1, head + (1UL << o));
            return true;
        }
        return false;
    }

    /// <summary>Sets PG_hwpoison on a raw page that is not part of any allocated folio (quarantine).</summary>
    public bool SetRawHwpoison(ulong pfn) => _rawHwpoison.Add(pfn);
    public bool ClearRawHwpoison(ulong pfn) => _rawHwpoison.Remove(pfn);

    /// <summary>put_page_back_buddy(): an unpoisoned quarantined page that no folio holds goes back to the free lists.</summary>
    public bool PutPageBackBuddy(ulong pfn)
    {
        if (!_rawHwpoison.Remove(pfn)) return false;
        if (FolioOf(pfn) is null && !IsFreePfn(pfn)) FreeBlock(pfn, 0);
        return true;
    }
    public bool IsRawHwpoison(ulong pfn) => _rawHwpoison.Contains(pfn);

    // ---- hardware poison: what the DRAM/cache actually holds ----

    /// <summary>Plants poison in the cacheline holding physical address pa.</summary>
    public void PoisonLine(ulong pa, PoisonKind kind)
    {
        ulong line = pa >> Units.CACHELINE_SHIFT;
        _poisonLines[line] = kind;
        _poisonLineSet.Add(line);
    }

    public PoisonKind? LinePoison(ulong pa) => _poisonLines.TryGetValue(pa >> Units.CACHELINE_SHIFT, out var k) ? k : null;

    /// <summary>First hardware-poisoned physical address in [pa, pa+len), or null.</summary>
    public ulong? FirstPoisonedLine(ulong pa, ulong len)
    {
        if (_poisonLineSet.Count == 0 || len == 0) return null;
        ulong a = pa >> Units.CACHELINE_SHIFT, b = (pa + len - 1) >> Units.CACHELINE_SHIFT;
        var v = _poisonLineSet.GetViewBetween(a, b);
        return v.Count == 0 ? null : v.Min << Units.CACHELINE_SHIFT;
    }

    /// <summary>A full-line overwrite (MOVDIR64B-style, no read-for-ownership): clears transient/deposited poison; permanent stays.</summary>
    public bool RepairLine(ulong pa)
    {
        ulong line = pa >> Units.CACHELINE_SHIFT;
        if (!_poisonLines.TryGetValue(line, out var k)) return true;
        if (k == PoisonKind.Permanent) return false;
        _poisonLines.Remove(line); _poisonLineSet.Remove(line);
        return true;
    }

    public IEnumerable<KeyValuePair<ulong, PoisonKind>> PoisonedLines => _poisonLines;

    /// <summary>Tag of the cacheline at pa (0 for free or never-written memory).</summary>
    public ulong LineTag(ulong pa)
    {
        var f = FolioOf(pa >> Units.PAGE_SHIFT);
        if (f?.Content is null) return ContentTag.Zero;
        return f.Content.Tag((uint)((pa - f.PhysAddr) >> Units.CACHELINE_SHIFT));
    }

    /// <summary>Approximate bytes of model state (for the model-memory benchmark).</summary>
    public long ApproxModelBytes()
    {
        long b = 0;
        foreach (var s in _free) b += s.Count * 40L;
        foreach (var f in _folios.Values) b += 120 + (f.Content?.ApproxBytes ?? 0) + (f.HasRawHwp ? f.RawHwp.Count * 8L + 32 : 0);
        b += _rawHwpoison.Count * 40L + _poisonLines.Count * 80L;
        return b;
    }
}

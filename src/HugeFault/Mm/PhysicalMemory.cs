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
    /// <summary>Allocated folios of order &gt; 0 by head pfn.</summary>
    private readonly Dictionary<ulong, Folio> _folios = new();
    /// <summary>
    /// Allocated order-0 folios (page-table pages, anonymous and tmpfs pages) in slots of 512 by pfn &gt;&gt; 9: a split
    /// that allocates 512 page tables fills one slot array instead of growing and rehashing a dictionary 512 times.
    /// </summary>
    private readonly Dictionary<ulong, Folio?[]> _small = new();
    private int _smallCount;
    /// <summary>The large folio FolioOf found last (a walk over one folio asks for it again and again); null once freed.</summary>
    private Folio? _lastLarge;
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
    /// <summary>Every allocated folio by head pfn.</summary>
    public IReadOnlyDictionary<ulong, Folio> Folios => new FolioView(this);
    public IReadOnlyCollection<ulong> RawHwpoisonPages => _rawHwpoison;

    /// <summary>
    /// A block split by an order-0 allocation whose free rest [_cursor, _cursorEnd) is not yet on the free lists: the
    /// buddy rules would hand those pages out one by one in address order before any other block (every lower order is
    /// empty when a block is split), so consecutive order-0 allocations (a split filling 512 page tables) take the next
    /// page without a free-list operation. Anything else that looks at the free lists puts the rest back first
    /// (<see cref="Flush"/>), as the maximal aligned blocks expand() would have left there.
    /// </summary>
    private ulong _cursor, _cursorEnd;

    private void Flush()
    {
        if (_cursor == _cursorEnd) return;
        ulong start = _cursor, end = _cursorEnd;
        _cursor = _cursorEnd = 0;
        // expand() leaves the upper halves at orders 0.. in rising address order; the rest of them is the lowest-bit
        // decomposition of [start, end)
        while (start < end)
        {
            int o = System.Numerics.BitOperations.TrailingZeroCount(start);
            while (start + (1UL << o) > end) o--;
            _free[o].Add(start);
            start += 1UL << o;
        }
    }

    /// <summary>__alloc_pages(): the lowest free block of the order (deterministic), splitting larger blocks.</summary>
    public Folio? AllocFolio(int order)
    {
        if (AllocBlock(order) is not { } pfn) return null;
        var f = new Folio(pfn, order);
        AddFolio(f);
        return f;
    }

    /// <summary>
    /// pagetable_alloc(): one order-0 page for a page table (its struct ptdesc overlays the struct page), allocated as
    /// <see cref="AllocFolio"/>(0) would allocate it, whose folio object is made only when someone asks for it
    /// (<see cref="FolioOf"/>, <see cref="Folios"/>): until then nothing but the page's pfn is stored, so the 512 PTE
    /// pages of a split 1 GiB mapping are not 512 objects. The folio made later is the one AllocFolio(0) would have
    /// returned (nothing can change a folio no one holds). Free it with <see cref="FreePage"/>.
    /// </summary>
    public ulong? AllocPageTablePage()
    {
        if (AllocBlock(0) is not { } pfn) return null;
        AddSmall(pfn, Unmade);
        return pfn;
    }

    /// <summary>The slot of an allocated order-0 page whose folio object is not made yet.</summary>
    private static readonly Folio Unmade = new(ulong.MaxValue >> Units.PAGE_SHIFT, 0);

    private ulong? AllocBlock(int order)
    {
        if (order == 0 && _cursor != _cursorEnd) { FreePages--; return _cursor++; }
        Flush();
        int o = order;
        while (o <= Units.MAX_ORDER && _free[o].Count == 0) o++;
        if (o > Units.MAX_ORDER) return null;
        ulong pfn = _free[o].Min;
        _free[o].Remove(pfn);
        if (order == 0 && o > 0) { _cursor = pfn + 1; _cursorEnd = pfn + (1UL << o); } // expand(), deferred (see _cursor)
        else while (o > order) { o--; _free[o].Add(pfn + (1UL << o)); } // expand(): upper halves go back
        FreePages -= 1UL << order;
        return pfn;
    }

    private void AddFolio(Folio f)
    {
        if (f.Order > 0) { _folios.Add(f.Pfn, f); return; }
        AddSmall(f.Pfn, f);
    }

    private void AddSmall(ulong pfn, Folio f)
    {
        if (!_small.TryGetValue(pfn >> 9, out var slots)) _small[pfn >> 9] = slots = new Folio?[512];
        if (slots[pfn & 511] is not null) throw new InvalidOperationException($"pfn {Units.Hex(pfn)} allocated twice");
        slots[pfn & 511] = f;
        _smallCount++;
    }

    /// <summary>The folio in an order-0 slot, made now if it was not yet (see <see cref="AllocPageTablePage"/>).</summary>
    private static Folio? Made(Folio?[] slots, ulong pfn)
    {
        var s = slots[pfn & 511];
        if (!ReferenceEquals(s, Unmade)) return s;
        return slots[pfn & 511] = new Folio(pfn, 0);
    }

    /// <summary>Forgets an allocated folio, wherever it was filed (its flags, order included, may have been reset by now).</summary>
    private bool RemoveFolio(Folio f)
    {
        if (f == _lastLarge) _lastLarge = null;
        if (_small.TryGetValue(f.Pfn >> 9, out var slots) && slots[f.Pfn & 511] == f)
        {
            slots[f.Pfn & 511] = null;
            _smallCount--;
            return true;
        }
        return _folios.TryGetValue(f.Pfn, out var g) && g == f && _folios.Remove(f.Pfn);
    }

    /// <summary>The allocated folio whose head is pfn.</summary>
    private Folio? HeadAt(ulong pfn) =>
        _small.TryGetValue(pfn >> 9, out var slots) && Made(slots, pfn) is { } s ? s : _folios.GetValueOrDefault(pfn);

    /// <summary>Frees a folio's block to buddy, merging with free buddies (__free_one_page()), except raw pages under quarantine.</summary>
    public void FreeFolio(Folio f)
    {
        Flush();
        if (!RemoveFolio(f)) throw new InvalidOperationException($"double free of {f}");
        // free_pages_prepare(): an order-0 page with PG_hwpoison never reaches buddy (page-table pages included)
        if (f.Order == 0 && f.IsHwpoison) _rawHwpoison.Add(f.Pfn);
        FreeBlockAround(f.Pfn, f.NrPages);
    }

    /// <summary>pagetable_free(): frees an order-0 page, whether or not its folio object was ever made (<see cref="AllocPageTablePage"/>).</summary>
    public void FreePage(ulong pfn)
    {
        if (!_small.TryGetValue(pfn >> 9, out var slots) || slots[pfn & 511] is not { } s) throw new InvalidOperationException($"double free of pfn {Units.Hex(pfn)}");
        if (!ReferenceEquals(s, Unmade)) { FreeFolio(s); return; }
        Flush();
        slots[pfn & 511] = null;
        _smallCount--;
        FreeBlockAround(pfn, 1); // a folio never made never had PG_hwpoison set
    }

    private void FreeBlockAround(ulong pfn, ulong nrPages)
    {
        // Only healthy pages go back: a block containing quarantined raw pages is freed page by page
        // around them (this is what Jiaqi Yan's "only free healthy pages" proposal does; mainline frees the
        // block and then takes the raw page off buddy, with a race window we do not model).
        var bad = _rawHwpoison.GetViewBetween(pfn, pfn + nrPages - 1);
        if (bad.Count == 0) { FreeBlock(pfn, System.Numerics.BitOperations.Log2(nrPages)); return; }
        FreeRangeAround(pfn, pfn + nrPages, bad.ToArray());
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
    public int FreeBlocks(int order) { Flush(); return _free[order].Count; }

    /// <summary>Finds the allocated folio containing pfn (page_folio()).</summary>
    public Folio? FolioOf(ulong pfn)
    {
        if (_lastLarge is { } l && l.ContainsPfn(pfn)) return l;
        if (_small.TryGetValue(pfn >> 9, out var slots) && Made(slots, pfn) is { } s) return s;
        // folios are naturally aligned: probe the orders in use
        if (_folios.TryGetValue(pfn, out var f) || _folios.TryGetValue(pfn & ~((1UL << 9) - 1), out f) && f.ContainsPfn(pfn)
            || _folios.TryGetValue(pfn & ~((1UL << 18) - 1), out f) && f.ContainsPfn(pfn))
            return _lastLarge = f;
        return null;
    }

    public bool IsFreePfn(ulong pfn)
    {
        Flush();
        for (int o = 0; o <= Units.MAX_ORDER; o++)
            if (_free[o].Contains(pfn & ~((1UL << o) - 1))) return true;
        return false;
    }

    /// <summary>take_page_off_buddy(): removes one free 4 KiB page from the allocator (splitting its block).</summary>
    public bool TakePageOffBuddy(ulong pfn)
    {
        Flush();
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
        Flush();
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
        // Min and Max walk the tree without allocating; a view (GetViewBetween counts its range when made) only when
        // the range starts between the lowest and highest poisoned lines of three or more
        ulong lo = _poisonLineSet.Min, hi = _poisonLineSet.Max;
        if (b < lo || a > hi) return null;
        if (a <= lo) return lo << Units.CACHELINE_SHIFT;
        if (_poisonLineSet.Count == 2) return hi <= b ? hi << Units.CACHELINE_SHIFT : null;
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
        Flush();
        long b = 0;
        foreach (var s in _free) b += s.Count * 40L;
        b += _small.Count * (512 * 8L + 40);
        // a folio object is 88 bytes; a page-table page whose folio was never made costs only its slot
        long Of(Folio f) => 88 + (f.Content?.ApproxBytes ?? 0) + (f.HasRawHwp ? f.RawHwp.Count * 8L + 32 : 0);
        foreach (var f in _folios.Values) b += Of(f);
        foreach (var slots in _small.Values)
            foreach (var f in slots)
                if (f is not null && !ReferenceEquals(f, Unmade)) b += Of(f);
        b += _rawHwpoison.Count * 40L + _poisonLines.Count * 80L;
        return b;
    }

    /// <summary><see cref="Folios"/>: the large and the order-0 folios as one read-only dictionary.</summary>
    private sealed class FolioView(PhysicalMemory p) : IReadOnlyDictionary<ulong, Folio>
    {
        public Folio this[ulong pfn] => p.HeadAt(pfn) ?? throw new KeyNotFoundException($"no folio at pfn {Units.Hex(pfn)}");
        public IEnumerable<ulong> Keys => this.Select(kv => kv.Key);
        public IEnumerable<Folio> Values => this.Select(kv => kv.Value);
        public int Count => p._folios.Count + p._smallCount;
        public bool ContainsKey(ulong pfn) => p.HeadAt(pfn) is not null;
        public bool TryGetValue(ulong pfn, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Folio value) => (value = p.HeadAt(pfn)) is not null;
        public IEnumerator<KeyValuePair<ulong, Folio>> GetEnumerator()
        {
            foreach (var kv in p._folios) yield return kv;
            foreach (var (chunk, slots) in p._small)
                for (ulong i = 0; i < 512; i++)
                    if (slots[i] is not null && Made(slots, (chunk << 9) | i) is { } f) yield return new(f.Pfn, f);
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

using CsCheck;
using HugeFault.Mm;
using HugeFault.Tests.Properties;

namespace HugeFault.Tests.Mm;

/// <summary>
/// Model-based tests of the two compact forms the model keeps for speed: the buddy allocator's deferred split of a
/// block for order-0 allocations (and its order-0 folio slots), against a reference buddy that does every free-list
/// operation eagerly (the allocator as it was); and a page table's run-with-exceptions form, against a plain array of
/// 512 entries and 512 child slots. After every step of a random sequence both sides must agree on everything a
/// caller can see.
/// </summary>
public class CompactFormsTests
{
    /// <summary>The reference: lowest free block of the order, upper halves back at once, buddies merged on free.</summary>
    private sealed class RefBuddy
    {
        private readonly SortedSet<ulong>[] _free = Enumerable.Range(0, Units.MAX_ORDER + 1).Select(_ => new SortedSet<ulong>()).ToArray();
        public ulong FreePages;
        public RefBuddy(ulong pages) { for (ulong p = 0; p < pages; p += 1UL << Units.MAX_ORDER) _free[Units.MAX_ORDER].Add(p); FreePages = pages; }
        public ulong? Alloc(int order)
        {
            int o = order;
            while (o <= Units.MAX_ORDER && _free[o].Count == 0) o++;
            if (o > Units.MAX_ORDER) return null;
            ulong pfn = _free[o].Min; _free[o].Remove(pfn);
            while (o > order) { o--; _free[o].Add(pfn + (1UL << o)); }
            FreePages -= 1UL << order;
            return pfn;
        }
        public void Free(ulong pfn, int order)
        {
            FreePages += 1UL << order;
            while (order < Units.MAX_ORDER && _free[order].Remove(pfn ^ (1UL << order))) { pfn &= ~(1UL << order); order++; }
            _free[order].Add(pfn);
        }
        public int Blocks(int order) => _free[order].Count;
    }

    public readonly record struct BuddyOp(int Kind, int Arg);

    private static readonly Gen<BuddyOp[]> BuddyOps =
        (from k in Gen.Int[0, 9] from a in Gen.Int[0, 1 << 20] select new BuddyOp(k, a)).Array[1, 400];

    [Fact]
    public void Order_zero_allocations_from_a_split_block_match_the_eager_buddy()
    {
        Pbt.Run(BuddyOps, ops =>
        {
            var pm = new PhysicalMemory(2 * Units.GiB);
            var rf = new RefBuddy(pm.TotalPages);
            var live = new List<Folio>();
            foreach (var op in ops)
            {
                if (op.Kind < 6 || live.Count == 0)
                {
                    int order = op.Kind switch { 0 => 9, 1 => 3, _ => 0 }; // mostly order 0, as page tables are
                    var f = pm.AllocFolio(order);
                    var r = rf.Alloc(order);
                    Assert.Equal(r, f?.Pfn);
                    if (f is not null) { live.Add(f); Assert.Same(f, pm.FolioOf(f.Pfn)); Assert.Same(f, pm.Folios[f.Pfn]); }
                }
                else
                {
                    var f = live[op.Arg % live.Count];
                    live.Remove(f);
                    int order = f.Order;
                    pm.FreeFolio(f);
                    rf.Free(f.Pfn, order);
                    Assert.Null(pm.FolioOf(f.Pfn));
                    Assert.False(pm.Folios.ContainsKey(f.Pfn));
                }
                Assert.Equal(rf.FreePages, pm.FreePages);
                Assert.Equal(live.Count, pm.Folios.Count);
                if (op.Arg % 7 == 0) // looking at the free lists puts a deferred split back: it must be what the reference holds
                    for (int o = 0; o <= Units.MAX_ORDER; o++) Assert.Equal(rf.Blocks(o), pm.FreeBlocks(o));
            }
            Assert.Equal(live.Select(f => f.Pfn).Order(), pm.Folios.Keys.Order());
        }, iter: 60, stream: 1001, print: ops => string.Join(" ", ops.Select(o => $"{o.Kind}:{o.Arg}")));
    }

    public readonly record struct TableOp(int Kind, int Index, int Value);

    private static readonly Gen<TableOp[]> TableOps =
        (from k in Gen.Int[0, 9] from i in Gen.Int[0, 511] from v in Gen.Int[0, 3] select new TableOp(k, i, v)).Array[1, 200];

    [Fact]
    public void A_run_table_with_exceptions_reads_like_512_entries()
    {
        Pbt.Run(TableOps, ops =>
        {
            var pm = new PhysicalMemory(Units.GiB);
            var t = new PageTable(pm.AllocFolio(0)!, PtLevel.Pmd);
            var entries = new Pte[512];
            var kids = new PageTable?[512];
            foreach (var op in ops)
            {
                bool leafTable = kids.All(k => k is null);
                switch (op.Kind)
                {
                    case 0 when leafTable && entries.All(e => e.IsNone):
                        // a split: 512 x 2 MiB leaves of consecutive pages, or 512 equal markers
                        var first = op.Value == 0 ? Pte.UffdWpMarker() : Pte.Leaf(0x40000 + (ulong)op.Index * 512, huge: true, writable: op.Value > 1);
                        ulong step = op.Value == 0 ? 0 : Units.PMD_SIZE;
                        t.SetLinear(first, step);
                        for (int i = 0; i < 512; i++) entries[i] = new Pte(first.Raw + (ulong)i * step);
                        break;
                    case 1 when leafTable:
                        t.Clear(); Array.Clear(entries);
                        break;
                    case 2 or 3 when kids[op.Index] is null:
                        var child = new PageTable(pm.AllocFolio(0)!, PtLevel.Pte);
                        t.SetChild(op.Index, child); kids[op.Index] = child; entries[op.Index] = Pte.Table(child.Pfn);
                        break;
                    case 4 when kids[op.Index] is not null:
                        Assert.Same(kids[op.Index], t.DetachChild(op.Index)); kids[op.Index] = null; entries[op.Index] = Pte.None;
                        break;
                    default:
                        if (kids[op.Index] is not null) break;
                        var e = op.Value switch
                        {
                            0 => Pte.None, 1 => Pte.Hwpoison(0x40000 + (ulong)op.Index * 512), 2 => Pte.PoisonMarker(),
                            // what the run would hold there (writes back the run's own entry)
                            _ => op.Index > 0 && !entries[op.Index - 1].IsNone && kids[op.Index - 1] is null ? new Pte(entries[op.Index - 1].Raw + Units.PMD_SIZE) : Pte.None,
                        };
                        t.Set(op.Index, e); entries[op.Index] = e;
                        break;
                }
                for (int i = 0; i < 512; i++) { Assert.Equal(entries[i], t.Get(i)); Assert.Same(kids[i], t.Child(i)); }
                Assert.Equal(entries.Count(e => !e.IsNone), t.Used);
                if (t.LinearRun is ({ } f, ulong s))
                    for (int i = 0; i < 512; i++) Assert.Equal(new Pte(f.Raw + (ulong)i * s), entries[i]);
            }
        }, iter: 80, stream: 1002, print: ops => string.Join(" ", ops.Select(o => $"{o.Kind}:{o.Index}:{o.Value}")));
    }

    /// <summary>
    /// PhysicalMemory.FirstPoisonedLine answers from the poisoned set's Min/Max when it can (none, one or two lines, a
    /// range starting at or below the lowest) and from a view otherwise: against the plain answer (the lowest poisoned
    /// line in the range) for random poison and ranges in a small window, so every fast path and the view are reached.
    /// </summary>
    [Fact]
    public void FirstPoisonedLine_is_the_lowest_poisoned_line_in_the_range()
    {
        var gen = from lines in Gen.Int[0, 63].Array[0, 6]
                  from q in (from a in Gen.Int[0, 64 * 64 + 63] from n in Gen.Int[0, 64 * 24] select (a, n)).Array[1, 20]
                  select (lines, q);
        Pbt.Run(gen, c =>
        {
            var pm = new PhysicalMemory(Units.GiB);
            foreach (int l in c.lines) pm.PoisonLine((ulong)l * 64, PoisonKind.Permanent);
            foreach (var (a, n) in c.q)
            {
                ulong? want = c.lines.Select(l => (ulong)l * 64).Where(l => l + 64 > (ulong)a && l < (ulong)a + (ulong)n).Order().Cast<ulong?>().FirstOrDefault();
                Assert.Equal(want, pm.FirstPoisonedLine((ulong)a, (ulong)n));
            }
        }, iter: 200, stream: 1006, print: c => $"lines [{string.Join(",", c.lines)}] ranges [{string.Join(" ", c.q)}]");
    }
}

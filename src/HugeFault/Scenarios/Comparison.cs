using HugeFault.Mm;

namespace HugeFault.Scenarios;

/// <summary>What one scenario run cost under one policy: the columns of `hugefault compare`.</summary>
public sealed record RunMetrics(
    string Scenario,
    string Policy,
    long InaccessibleBytes,
    long GoodDataLostBytes,
    int TasksSignalled,
    long TasksKilled,
    long ExtraPeakBytes,
    long PageTablePeakBytes,
    long EntriesWritten,
    long PagesCopied,
    long MapcountUpdates,
    long PoolHugePagesLost,
    long InaccessibleNs,
    bool ExpectationsHold,
    int ExpectationFailures)
{
    public int VmsTotal { get; init; }
    public int VmsSurvived { get; init; }
    public long GuestMemoryLostBytes { get; init; }
    public long HostMemoryLostBytes { get; init; }
    public int Migrations { get; init; }
    public int MigrationsRefused { get; init; }
    public long MigrationDowntimeNs { get; init; }
    public long PostcopyStallP99Ns { get; init; }
    public long FakePoisonedBytes { get; init; }
}

/// <summary>Runs scenarios under several policies and measures each run.</summary>
public static class Comparison
{
    public static RunMetrics Measure(ScenarioRun run)
    {
        var k = run.Kernel;
        var (inacc, badInside) = Inaccessible(k);
        long lost = Math.Max(0, inacc - badInside) + k.Stats.BytesZeroed + k.Stats.GoodDataDroppedBytes;
        long poolLost = k.Stats.PoisonedHugePagesDissolved + k.Stats.HugePagesConverted
            + k.Phys.Folios.Values.Count(f => f.IsHugetlb && f.IsHwpoison);
        int signalled = k.Trace.OfType<SignalEvent>().Select(s => s.Task).Distinct().Count();
        return new RunMetrics(run.Scenario.Name, run.Policy, inacc, lost, signalled, k.Stats.TasksKilled, k.Stats.ExtraBytesPeak,
            k.Stats.TablePagesPeak * (long)Units.PAGE_SIZE, k.Stats.EntriesWritten, k.Stats.PagesCopied, k.Stats.MapcountUpdates,
            poolLost, k.Stats.InaccessibleNs, run.Passed, run.Failures.Count())
        {
            VmsTotal = run.Vms.Count,
            VmsSurvived = run.Vms.Values.Count(v => v.Alive),
            GuestMemoryLostBytes = run.Vms.Values.Sum(v => (long)v.GuestMemoryLost()),
            HostMemoryLostBytes = HostMemoryLost(k),
            Migrations = run.Migrations.Count,
            MigrationsRefused = run.Migrations.Count(m => m.Refused),
            MigrationDowntimeNs = run.Migrations.Where(m => !m.Refused).Sum(m => m.DowntimeNs),
            PostcopyStallP99Ns = run.Migrations.Where(m => !m.Refused).Select(m => m.StallP99Ns).DefaultIfEmpty(0).Max(),
            FakePoisonedBytes = run.Migrations.Sum(m => (long)m.FakePoisonedBytes),
        };
    }

    /// <summary>Host memory no longer usable: poisoned hugetlb folios still allocated (whole) plus quarantined raw pages.</summary>
    public static long HostMemoryLost(Kernel k)
    {
        // a poisoned folio nobody can map any more is lost whole; one still (partly) mapped loses its bad pages
        long b = k.Phys.Folios.Values.Where(f => f.IsHwpoison).Sum(f => f.Mapped ? (long)(f.RawHwp.Count + f.FakePoison.Count) * (long)Units.PAGE_SIZE : (long)f.Size);
        b += k.Phys.Folios.Values.Where(f => !f.IsHwpoison && f.FakePoison.Count > 0).Sum(f => f.FakePoison.Count * (long)Units.PAGE_SIZE);
        b += k.Phys.RawHwpoisonPages.Count * (long)Units.PAGE_SIZE;
        return b;
    }

    public static IReadOnlyList<RunMetrics> Compare(IEnumerable<Scenario> scenarios, IReadOnlyList<string> policies) =>
        scenarios.SelectMany(sc => policies.Select(p => Measure(ScenarioRunner.Run(sc, p)))).ToList();

    /// <summary>
    /// Bytes of live user mappings that would fault with a memory error if touched now, summed over address
    /// spaces; and how many of those bytes are hardware-poisoned lines themselves (the rest is good data).
    /// Counted per chunk (the VMA's huge page size, or 4 KiB); a 4 KiB VMA is walked once, like pagemap does
    /// (walk_page_range()), so the cost follows its leaves and poisoned pages, not its size.
    /// </summary>
    public static (long Bytes, long BadBytes) Inaccessible(Kernel k)
    {
        long bytes = 0, bad = 0;
        var lines = new Dictionary<Folio, long>();
        long LinesIn(Folio folio)
        {
            if (!lines.TryGetValue(folio, out long n))
                lines[folio] = n = k.Phys.PoisonedLines.Count(kv => (kv.Key << Units.CACHELINE_SHIFT) >= folio.PhysAddr && (kv.Key << Units.CACHELINE_SHIFT) < folio.PhysAddr + folio.Size);
            return n;
        }
        void Add(Vma v, ulong a, long here)
        {
            bytes += here;
            if (here > 0 && FolioAt(k, v, a) is { } folio) bad += Math.Min(here, LinesIn(folio) * (long)Units.CACHELINE);
        }
        var mms = k.Tasks.Where(t => t.Alive).Select(t => t.Mm).Distinct().OrderBy(m => m.Id);
        foreach (var mm in mms)
        {
            foreach (var v in mm.Vmas.OrderBy(v => v.Start))
            {
                if (v.Hstate is null) { foreach (var (a, here) in Inaccessible4K(k, v)) Add(v, a, here); continue; }
                ulong chunk = v.Hstate.Size;
                for (ulong a = v.Start; a < v.End; a += chunk)
                {
                    ulong end = Math.Min(v.End, a + chunk);
                    long here = 0; bool any = false; Folio? last = null;
                    k.ForEachLeaf(mm, a, end, r => { any = true; here += LeafBytes(k, r, ref last); });
                    if (!any && FolioAt(k, v, a) is { IsHwpoison: true } f)
                        here = !k.Policy.AllowFaultOnPoisonedFolio(k, v, f, a) ? (long)(end - a) : RawIn(f, v.FileOffset(a) % f.Size, end - a);
                    Add(v, a, here);
                }
            }
        }
        return (bytes, bad);
    }

    /// <summary>
    /// What a leaf makes inaccessible: all of a hwpoison entry or poison marker; the raw poisoned pages under a present
    /// leaf. <c>last</c> carries the previous leaf's folio (neighbouring PTEs mostly map the same folio).
    /// </summary>
    private static long LeafBytes(Kernel k, PteRef r, ref Folio? last)
    {
        var e = r.Entry;
        if (e.IsHwpoison || e.IsPoisonMarker) return (long)r.Size;
        if (!e.Present) return 0;
        if (last is null || !last.ContainsPfn(e.Pfn)) last = k.Phys.FolioOf(e.Pfn);
        long here = 0;
        if (last is { IsHwpoison: true } pf)
            foreach (var raw in pf.RawHwp)
                if (raw >= e.Pfn && raw < e.Pfn + (r.Size >> Units.PAGE_SHIFT)) here += (long)Units.PAGE_SIZE;
        return here;
    }

    /// <summary>Bytes of the raw poisoned pages of <paramref name="f"/> in [offset, offset + length) of the folio.</summary>
    private static long RawIn(Folio f, ulong offset, ulong length) =>
        f.RawHwp.Count(raw => ((raw - f.Pfn) << Units.PAGE_SHIFT) >= offset && ((raw - f.Pfn) << Units.PAGE_SHIFT) < offset + length) * (long)Units.PAGE_SIZE;

    /// <summary>
    /// The inaccessible 4 KiB chunks of a non-hugetlb VMA, from one walk of its leaves: a leaf counts in every chunk
    /// it overlaps; an unmapped chunk counts the raw poisoned pages of the page-cache folio behind it.
    /// </summary>
    private static IEnumerable<(ulong Va, long Bytes)> Inaccessible4K(Kernel k, Vma v)
    {
        const ulong P = Units.PAGE_SIZE;
        var here = new SortedDictionary<ulong, long>();
        var covered = new List<(ulong Start, ulong End)>();
        Folio? last = null;
        k.ForEachLeaf(v.Mm, v.Start, v.End, r =>
        {
            ulong s = Math.Max(r.Va, v.Start), e = Math.Min(r.Va + r.Size, v.End);
            if (covered.Count > 0 && covered[^1].End >= s) covered[^1] = (covered[^1].Start, Math.Max(covered[^1].End, e));
            else covered.Add((s, e));
            long c = LeafBytes(k, r, ref last);
            if (c == 0) return;
            for (ulong a = v.Start + (s - v.Start) / P * P; a < e; a += P) here[a] = here.GetValueOrDefault(a) + c;
        });
        bool Hole(ulong a)
        {
            int lo = 0, hi = covered.Count - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) / 2;
                if (covered[mid].End <= a) lo = mid + 1;
                else if (covered[mid].Start >= a + P) hi = mid - 1;
                else return false;
            }
            return true;
        }
        if (v.File is { } inode)
        {
            ulong fStart = v.FileOffset(v.Start), fEnd = v.FileOffset(v.End);
            foreach (var (idx, f) in inode.PageCache)
            {
                ulong at = idx << inode.FolioShift;
                if (!f.IsHwpoison || at + inode.FolioSize <= fStart || at >= fEnd) continue;
                foreach (var raw in f.RawHwp)
                {
                    ulong off = at + ((raw - f.Pfn) << Units.PAGE_SHIFT);
                    if (off < fStart || off >= fEnd) continue;
                    ulong a = v.Start + (off - fStart) / P * P;
                    // the chunk's folio is the one at its file offset; the raw page must lie in that chunk of it
                    if (!Hole(a) || !ReferenceEquals(FolioAt(k, v, a), f)) continue;
                    if (RawIn(f, v.FileOffset(a) % f.Size, P) > 0 && !here.ContainsKey(a)) here[a] = RawIn(f, v.FileOffset(a) % f.Size, P);
                }
            }
        }
        foreach (var kv in here) yield return (kv.Key, kv.Value);
    }

    private static Folio? FolioAt(Kernel k, Vma v, ulong a)
    {
        if (v.File is { } inode && inode.PageCache.TryGetValue(v.FileOffset(a) >> inode.FolioShift, out var f)) return f;
        var r = k.Walk(v.Mm, a);
        return r.Entry.Present || r.Entry.IsHwpoison ? k.Phys.FolioOf(r.Entry.Pfn) : null;
    }
}

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
        long b = k.Phys.Folios.Values.Where(f => f.IsHwpoison).Sum(f => f.Mapped ? (long)(f.RawHwp.Count + f.FakePoisonCount) * (long)Units.PAGE_SIZE : (long)f.Size);
        b += k.Phys.Folios.Values.Where(f => !f.IsHwpoison && f.FakePoisonCount > 0).Sum(f => f.FakePoisonCount * (long)Units.PAGE_SIZE);
        b += k.Phys.RawHwpoisonPages.Count * (long)Units.PAGE_SIZE;
        return b;
    }

    public static IReadOnlyList<RunMetrics> Compare(IEnumerable<Scenario> scenarios, IReadOnlyList<string> policies) =>
        scenarios.SelectMany(sc => policies.Select(p => Measure(ScenarioRunner.Run(sc, p)))).ToList();

    /// <summary>
    /// Bytes of live user mappings that would fault with a memory error if touched now, summed over address
    /// spaces; and how many of those bytes are hardware-poisoned lines themselves (the rest is good data).
    /// Counted per chunk (the VMA's huge page size, or 4 KiB); each VMA is walked once by runs of leaves, like pagemap
    /// does (walk_page_range()), so the cost follows its page-table pages and poisoned pages, not its size.
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
                    k.ForEachLeafRun(mm, a, end, run => { any = true; here += RunBytes(k, run, ref last, null); });
                    if (!any && FolioAt(k, v, a) is { IsHwpoison: true } f)
                        here = !k.Policy.AllowFaultOnPoisonedFolio(k, v, f, a) ? (long)(end - a) : RawIn(f, v.FileOffset(a) % f.Size, end - a);
                    Add(v, a, here);
                }
            }
        }
        return (bytes, bad);
    }

    /// <summary>
    /// What a run of leaves makes inaccessible: all of hwpoison entries and poison markers; the raw poisoned pages under
    /// present leaves. <c>last</c> carries the previous leaf's folio (neighbouring leaves mostly map the same folio).
    /// <paramref name="perEntry"/>, if given, is told each entry with a non-zero count: (entry index in the run, bytes).
    /// </summary>
    private static long RunBytes(Kernel k, LeafRunRef run, ref Folio? last, Action<int, long>? perEntry)
    {
        var e = run.First;
        if (e.IsHwpoison || e.IsPoisonMarker)
        {
            if (perEntry is not null) for (int i = 0; i < run.Count; i++) perEntry(i, (long)run.Size);
            return (long)run.Size * run.Count;
        }
        if (!e.Present) return 0;
        long total = 0;
        ulong pages = run.Size >> Units.PAGE_SHIFT, d = run.Count > 1 ? run.Step >> Units.PAGE_SHIFT : pages;
        for (int i = 0; i < run.Count; )
        {
            ulong pfn = e.Pfn + (ulong)i * d;
            if (last is null || !last.ContainsPfn(pfn)) last = k.Phys.FolioOf(pfn);
            if (last is null) { i++; continue; }
            // the entries of the run that start inside this folio
            int n = (int)Math.Min((ulong)(run.Count - i), (last.Pfn + last.NrPages - pfn + d - 1) / d);
            if (last is { IsHwpoison: true } pf)
                foreach (var raw in pf.RawHwp)
                {
                    if (raw < pfn) continue;
                    // entry jj of these covers [pfn + jj·d, + pages): the raw page lies under at most one of them
                    ulong jj = (raw - pfn) / d;
                    if (jj < (ulong)n && raw < pfn + jj * d + pages)
                    {
                        total += (long)Units.PAGE_SIZE;
                        perEntry?.Invoke(i + (int)jj, (long)Units.PAGE_SIZE);
                    }
                }
            i += n;
        }
        return total;
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
        k.ForEachLeafRun(v.Mm, v.Start, v.End, run =>
        {
            ulong s = Math.Max(run.Va, v.Start), e = Math.Min(run.End, v.End);
            if (covered.Count > 0 && covered[^1].End >= s) covered[^1] = (covered[^1].Start, Math.Max(covered[^1].End, e));
            else covered.Add((s, e));
            RunBytes(k, run, ref last, (i, c) =>
            {
                // the entry's bytes count in every 4 KiB chunk the entry overlaps
                ulong es = Math.Max(run.Va + (ulong)i * run.Size, v.Start), ee = Math.Min(run.Va + (ulong)(i + 1) * run.Size, v.End);
                for (ulong a = v.Start + (es - v.Start) / P * P; a < ee; a += P) here[a] = here.GetValueOrDefault(a) + c;
            });
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

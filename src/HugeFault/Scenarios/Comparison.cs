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
    /// </summary>
    public static (long Bytes, long BadBytes) Inaccessible(Kernel k)
    {
        long bytes = 0, bad = 0;
        var mms = k.Tasks.Where(t => t.Alive).Select(t => t.Mm).Distinct().OrderBy(m => m.Id);
        foreach (var mm in mms)
        {
            foreach (var v in mm.Vmas.OrderBy(v => v.Start))
            {
                ulong chunk = v.Hstate?.Size ?? Units.PAGE_SIZE;
                for (ulong a = v.Start; a < v.End; a += chunk)
                {
                    ulong end = Math.Min(v.End, a + chunk);
                    long here = 0; bool any = false;
                    var folio = FolioAt(k, v, a);
                    k.ForEachLeaf(mm, a, end, r =>
                    {
                        any = true;
                        var e = r.Entry;
                        if (e.IsHwpoison || e.IsPoisonMarker) { here += (long)r.Size; return; }
                        if (e.Present && k.Phys.FolioOf(e.Pfn) is { IsHwpoison: true } pf)
                            foreach (var raw in pf.RawHwp)
                                if (raw >= e.Pfn && raw < e.Pfn + (r.Size >> Units.PAGE_SHIFT)) here += (long)Units.PAGE_SIZE;
                    });
                    if (!any && folio is { IsHwpoison: true } f)
                    {
                        if (v.Hstate is not null && !k.Policy.AllowFaultOnPoisonedFolio(k, v, f, a)) here = (long)(end - a);
                        else
                        {
                            // only the raw poisoned pages inside [a, end) would be refused
                            ulong fo = v.FileOffset(a) % f.Size, fe = fo + (end - a);
                            here = f.RawHwp.Count(raw => ((raw - f.Pfn) << Units.PAGE_SHIFT) >= fo && ((raw - f.Pfn) << Units.PAGE_SHIFT) < fe) * (long)Units.PAGE_SIZE;
                        }
                    }
                    bytes += here;
                    if (here > 0 && folio is not null)
                    {
                        var lines = k.Phys.PoisonedLines.Count(kv => (kv.Key << Units.CACHELINE_SHIFT) >= folio.PhysAddr && (kv.Key << Units.CACHELINE_SHIFT) < folio.PhysAddr + folio.Size);
                        bad += Math.Min(here, lines * (long)Units.CACHELINE);
                    }
                }
            }
        }
        return (bytes, bad);
    }

    private static Folio? FolioAt(Kernel k, Vma v, ulong a)
    {
        if (v.File is { } inode && inode.PageCache.TryGetValue(v.FileOffset(a) >> inode.FolioShift, out var f)) return f;
        var r = k.Walk(v.Mm, a);
        return r.Entry.Present || r.Entry.IsHwpoison ? k.Phys.FolioOf(r.Entry.Pfn) : null;
    }
}

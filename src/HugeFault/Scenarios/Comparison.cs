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
    int ExpectationFailures);

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
            poolLost, k.Stats.InaccessibleNs, run.Passed, run.Failures.Count());
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
                    if (!any && folio is { IsHwpoison: true } f && v.Hstate is not null)
                        here = k.Policy.AllowFaultOnPoisonedFolio(k, v, f, a) ? f.RawHwp.Count * (long)Units.PAGE_SIZE : (long)(end - a);
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

using HugeFault.Recovery.Kernel;
using HugeFault.Recovery.Native;

namespace HugeFault.Recovery;

/// <summary>Turns what the native agent and handler wrote into the control block into records.</summary>
internal static unsafe class Reporting
{
    /// <summary>Pages that reached ST_RECOVERED or ST_FAILED and were not reported yet (marked reported).</summary>
    public static List<PageRecovery> Collect(HfCtl* c, IKernel k)
    {
        var list = new List<PageRecovery>();
        uint n = Volatile.Read(ref c->NRegions);
        for (int ri = 0; ri < n; ri++)
        {
            var r = HfCtl.Region(c, ri);
            ulong pages = (r->End - r->Start) >> (int)r->Shift;
            for (ulong i = 0; i < pages; i++)
            {
                uint s = Volatile.Read(ref r->States[i]);
                if (s is not (PageState.Recovered or PageState.Failed) || r->Pages[i].Reported != 0) continue;
                r->Pages[i].Reported = 1;
                list.Add(Page(c, k, r, i, s));
            }
        }
        return list;
    }

    private static PageRecovery Page(HfCtl* c, IKernel k, HfRegion* r, ulong i, uint state)
    {
        ref HfPage p = ref r->Pages[i];
        ulong size = 1UL << (int)r->Shift, first = (i << (int)r->Shift) >> 12;
        var lost = new List<long>();
        for (ulong j = 0; j < size >> 12; j++)
        {
            ulong b = first + j;
            if ((r->Lost[b / 64] & (1UL << (int)(b % 64))) != 0) lost.Add((long)(j << 12));
        }
        var outcome = state == PageState.Recovered ? RecoveryOutcome.Recovered
            : p.Step is Steps.Shared or Steps.Uninspected or Steps.Stopped ? RecoveryOutcome.Refused : RecoveryOutcome.Failed;
        long t0 = p.TEvent != 0 ? p.TEvent : p.TStart;
        static TimeSpan Span(long a, long b) => a != 0 && b >= a ? TimeSpan.FromTicks((b - a) / 100) : TimeSpan.Zero;
        long end = p.TSwapped != 0 ? p.TSwapped : p.TStart;
        return new PageRecovery(outcome, (nint)(r->Start + (i << (int)r->Shift)), (long)size, (long)(r->FileOff + (i << (int)r->Shift)),
            lost, Reason(p, k), p.FirstCode, p.FirstAddr, p.FirstLsb, Span(t0, p.TStart), Span(p.TStart, p.TScanned), Span(p.TScanned, p.TFilled),
            Span(p.TFilled, p.TSwapped), Span(t0, end),
            (long)p.Copied, state == PageState.Recovered ? p.Mfd : -1, (int)p.Runs, p.OtherPid, (int)p.Uninspected, (c->Flags & (uint)CtlFlags.Thp) != 0);
    }

    private static string Reason(in HfPage p, IKernel k) => p.Step switch
    {
        Steps.None => "",
        Steps.Shared => $"refused: process {p.OtherPid} ({KernelCalls.ReadText(k, $"/proc/{p.OtherPid}/comm", out _)?.Trim() ?? "?"}) also maps or holds the file; replacing only this process's mapping "
            + "would leave it on the poisoned page and split the shared memory (sharing a replacement between processes is not implemented)",
        Steps.Uninspected => $"refused: {p.Uninspected} process(es) could not be inspected in /proc and might share the file (StrictProcessScan)",
        Steps.Stopped => "refused: the agent was stopped",
        _ => $"failed at {Steps.Name(p.Step)}: {Uapi.ErrnoName(p.Err)}",
    };

    private static readonly string[] ActionNames = ["?", "retried", "fixup", "ao-noted", "chained", "ao-ignored"];

    public static List<SignalRecord> Signals(HfCtl* c)
    {
        long n = (long)Math.Min(Volatile.Read(ref c->NRec), HfCtl.MaxRecords);
        var list = new List<SignalRecord>((int)n);
        for (long i = 0; i < n; i++)
        {
            var s = HfCtl.Record(c, i);
            int a = Volatile.Read(ref s->Action);
            list.Add(new SignalRecord(s->Signo, s->Code, s->Addr, s->Lsb, s->Tid, s->TFault, s->TResume, a is > 0 and < 6 ? ActionNames[a] : "in handler"));
        }
        return list;
    }
}

/// <summary>hf_page.step (STEP_* in hf.h).</summary>
internal static class Steps
{
    public const uint None = 0, Scan = 1, Shared = 2, Uninspected = 3, Memfd = 4, Ftruncate = 5, Mmap = 6, Read = 7, DontNeed = 8,
        Register = 9, Poison = 10, Unregister = 11, Mremap = 12, Stopped = 13;

    private static readonly string[] Names = ["none", "the /proc scan", "shared", "uninspected", "memfd_create", "ftruncate", "mmap of the replacement",
        "pread of the good data", "MADV_DONTNEED", "UFFDIO_REGISTER", "UFFDIO_POISON", "UFFDIO_UNREGISTER", "mremap over the huge page", "stopped"];

    public static string Name(uint step) => step < Names.Length ? Names[step] : "step " + step;
}

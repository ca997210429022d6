using HugeFault.Fleet.Dram;
using HugeFault.Fleet.Replay;

namespace HugeFault.Reports.Output;

/// <summary>The replay of an operator's log as report blocks: the host, each error under each policy, and the totals.</summary>
public static class ReplayReport
{
    public static ReportDoc Build(ReplayResult r, MemoryErrorLog log, string title)
    {
        var h = r.Host;
        int placed = r.Errors.Count(e => e.Outcomes is not null);
        var doc = new ReportDoc().Heading(title, 2, "replay");
        doc.Para($"{Fmt.Count(r.Errors.Count)} uncorrected error{(r.Errors.Count == 1 ? "" : "s")} from the {log.Format} log ({Fmt.Count(log.Corrected)} corrected ones ignored), " +
                 $"{Fmt.Count(placed)} with a physical address, replayed as permanent poison on a {h.MemoryGiB} GiB host: 1 GiB hugetlb pool at GiB {h.PoolStartGiB}–{h.PoolStartGiB + h.PoolGiB - 1}, " +
                 $"{h.Vms} VMs of {h.VmGiB} GiB from its start, the rest free.");
        var unlocated = r.Errors.Count(e => e.Shape is { Located: false });
        var faults = r.Errors.Where(e => e.Shape is { Located: true, Mode: not DramFaultMode.Bit }).GroupBy(e => e.Shape!.Mode).OrderBy(g => g.Key)
            .Select(g => $"{Fmt.Count(g.Count())} error{(g.Count() == 1 ? "" : "s")} in {g.Key.Name()} faults").ToList();
        if (faults.Count > 0)
            doc.Para($"Faults read off the DIMM rank/bank/row/column the log gives: {string.Join(", ", faults)}; every bad line of a fault is present from its first error (laid out by the fleet's address map, server.address_map), so that error is one multi-page event and the fault's later errors in the same GiB are those lines reported again.");
        if (unlocated > 0)
            doc.Para($"Note: {Fmt.Count(unlocated)} error{(unlocated == 1 ? "" : "s")} with an address but no DIMM row/column in the log {(unlocated == 1 ? "is replayed as one bad line" : "are replayed as one bad line each")}; a row, column or bank fault behind {(unlocated == 1 ? "it" : "them")} would spoil more lines from the start.");
        var per = new TextTable("per error", [new("error", Right: false), new("where", Right: false), .. r.Policies.Select(p => new TextColumn(p))], keyColumns: 2);
        for (int index = 0; index < r.Errors.Count; index++)
        {
            var e = r.Errors[index];
            bool lead = e.Shape is null || e.Shape.Lead == index;
            var cells = new List<TextCell> { TextCell.Of(e.Error.Source, $"{(e.Error.Consumed ? "consumed" : "scrub/controller")}, {e.Error.Location}"),
                e.Shape is { } sh ? TextCell.Of(e.Where, sh.Describe(lead)) : e.Where };
            for (int i = 0; i < r.Policies.Count; i++)
                cells.Add(e.Outcomes is not { } os ? "not placed" : lead ? Cell(os[i]) : "in its fault's first event");
            per.Row(cells.ToArray());
        }
        per.Notes.Add("Each cell: guest memory lost; stranded host memory; VM killed or machine checks into a surviving guest; 'repaired' when the lines were rewritten.");
        doc.Table(per);
        var tot = new TextTable("what each policy would have cost", [new("policy", Right: false), new("host panics"), new("VMs killed"), new("MCEs on surviving guests (events)"),
            new("guest memory lost"), new("stranded host memory"), new("MCEs into guests"), new("repairs")]);
        foreach (var t in r.Totals)
            tot.Row(t.Policy, Fmt.Count(t.HostPanics), Fmt.Count(t.VmsKilled), Fmt.Count(t.VmsHitSurviving), Fmt.Bytes(t.GuestLostBytes), Fmt.Bytes(t.StrandedBytes), Fmt.Count(t.Mces), Fmt.Count(t.Repairs));
        tot.Notes.Add($"A surviving guest hit by a machine check also dies when the line held guest-kernel memory (p = {Fmt.Num(r.GuestKernelFraction)} per guest page, guest.guest_kernel_fraction).");
        doc.Table(tot);
        var best = r.Totals.OrderBy(t => t.HostPanics).ThenBy(t => t.VmsKilled).ThenBy(t => t.GuestLostBytes).ThenBy(t => t.StrandedBytes).First();
        var main = r.Totals.FirstOrDefault(t => t.Policy == "mainline");
        if (main is not null && placed > 0)
            doc.Para($"On this log mainline would have killed {Fmt.Count(main.VmsKilled)} VM{(main.VmsKilled == 1 ? "" : "s")} and lost {Fmt.Bytes(main.GuestLostBytes)} of guest memory; " +
                     $"{best.Policy} least: {Fmt.Count(best.VmsKilled)} killed, {Fmt.Bytes(best.GuestLostBytes)} lost, {Fmt.Bytes(best.StrandedBytes)} stranded.");
        return doc;
    }

    private static TextCell Cell(ReplayOutcome o) => o.Repaired ? TextCell.Of("repaired")
        : o.HostPanicked ? TextCell.Of("host panic", "every VM killed, host rebooted")
        : TextCell.Of($"{Fmt.Bytes(o.GuestLostBytes)} lost; {Fmt.Bytes(o.StrandedBytes)} stranded", o.HostPanicked ? "host panic: every VM killed" : o.VmDied ? "VM killed" : o.Mces > 0 ? $"{o.Mces} MCE" : "");
}

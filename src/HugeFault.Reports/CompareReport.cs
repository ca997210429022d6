using HugeFault.Fleet;
using HugeFault.Scenarios;
using HugeFault.Simulation;

namespace HugeFault.Reports;

/// <summary>Everything one <c>hugefault compare</c> computed.</summary>
/// <param name="Snapshots">Page tables just after the error of each (scenario, policy) run (<see cref="CompareRunner.JustAfterTheError"/>), for the HTML pictures (may be empty).</param>
public sealed record CompareResult(
    IReadOnlyList<Scenario> Scenarios,
    IReadOnlyList<string> Policies,
    IReadOnlyList<RunMetrics> Rows,
    FleetReport? Fleet,
    FleetBands? Bands,
    SensitivityResult? Sensitivity,
    IReadOnlyDictionary<(string Scenario, string Policy), HugeFault.Mm.PageTableSnapshot> Snapshots)
{
    public PolicyFigures Figures() => Summary.Figures(Scenarios, Policies, Rows, Fleet);

    /// <summary>The verdict of these figures, with the sensitivity sentence when the re-runs were made.</summary>
    public Verdict.Result Verdict(PolicyFigures f) =>
        Reports.Verdict.Build(f, Summary.Facts(Fleet), Sensitivity is { } s ? SensitivityReport.Summary(s, f) : null);
}

/// <summary>Runs a comparison: every scenario under every policy (in parallel, results in a fixed order) and the fleet.</summary>
public static class CompareRunner
{
    /// <param name="seconds">When given, receives each (scenario, policy) run's wall time, in the order of the rows.</param>
    public static (IReadOnlyList<RunMetrics> Rows, Dictionary<(string, string), HugeFault.Mm.PageTableSnapshot> Snapshots) RunScenarios(
        IReadOnlyList<Scenario> scenarios, IReadOnlyList<string> policies, bool snapshots, int threads, double[]? seconds = null)
    {
        var jobs = scenarios.SelectMany(sc => policies.Select(p => (sc, p))).ToArray();
        var rows = new RunMetrics[jobs.Length];
        var snaps = new HugeFault.Mm.PageTableSnapshot?[jobs.Length];
        Parallel.For(0, jobs.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, i =>
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            var afterError = new List<HugeFault.Mm.PageTableSnapshot>();
            bool erred = false; // from the first error step on, a snapshot after every step (an error may be consumed later)
            Action<Step, HugeFault.Kernel>? hook = snapshots ? (s, k) => { if (erred |= Summary.IsErrorStep(s)) afterError.Add(HugeFault.Mm.PageTableSnapshot.Take(k)); } : null;
            var run = ScenarioRunner.Run(jobs[i].sc, jobs[i].p, afterStep: hook);
            rows[i] = Comparison.Measure(run);
            if (snapshots) snaps[i] = JustAfterTheError(afterError, run.Kernel);
            if (seconds is not null) seconds[i] = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
        });
        var dict = new Dictionary<(string, string), HugeFault.Mm.PageTableSnapshot>();
        for (int i = 0; i < jobs.Length; i++) if (snaps[i] is { } s) dict[(jobs[i].sc.Name, jobs[i].p)] = s;
        return (rows, dict);
    }

    /// <summary>
    /// Each process's page tables just after the error: <paramref name="afterError"/> holds a snapshot after every step
    /// from the first error step on; a process is taken from the first in which its page tables show the error (a
    /// hwpoison entry, a poison marker or a poisoned page still mapped), else from the first that has it; a process in
    /// none of them (or a scenario without error steps) as the run left it.
    /// </summary>
    public static HugeFault.Mm.PageTableSnapshot JustAfterTheError(IReadOnlyList<HugeFault.Mm.PageTableSnapshot> afterError, HugeFault.Kernel final)
    {
        static bool ShowsError(HugeFault.Mm.MmSnapshot m) => m.Vmas.Any(v => v.PoisonedMapped.Count > 0 || v.Runs.Any(r => r.Kind is HugeFault.Mm.LeafKind.Hwpoison or HugeFault.Mm.LeafKind.PoisonMarker or HugeFault.Mm.LeafKind.PresentPoisoned));
        var all = afterError.Append(HugeFault.Mm.PageTableSnapshot.Take(final)).ToList();
        var ids = all.SelectMany(s => s.Mms.Select(m => m.MmId)).Distinct().Order();
        var pick = new List<HugeFault.Mm.MmSnapshot>();
        foreach (int id in ids)
        {
            var seen = afterError.SelectMany(s => s.Mms.Where(m => m.MmId == id)).ToList();
            pick.Add(seen.FirstOrDefault(ShowsError) ?? seen.FirstOrDefault() ?? all[^1].Mms.First(m => m.MmId == id));
        }
        return new HugeFault.Mm.PageTableSnapshot(pick);
    }
}

/// <summary>The compare report as a document: summary, verdict, sensitivity, then the evidence.</summary>
public static class CompareReport
{
    /// <param name="figures">Add the SVG figures (HTML): fleet charts, tornado, page-table pictures.</param>
    public static ReportDoc Build(CompareResult r, bool figures = false)
    {
        var f = r.Figures();
        var v = r.Verdict(f);
        var doc = new ReportDoc();
        string fleetPart = r.Fleet is null ? "no fleet" : $"the default fleet ({FleetSection.Metadata(r.Fleet)})";
        doc.Heading($"HugeFault: {r.Policies.Count} recovery policies on {(r.Scenarios.Count == 1 ? "1 scenario" : $"{r.Scenarios.Count} scenarios")} and {fleetPart}", 1, "top");
        doc.Table(Summary.Table(f, r.Scenarios.Count, r.Fleet is not null));
        doc.Para("Scenario columns are exact: per injected error (summed over the scenarios, divided by their errors) or the largest peak of any scenario. " +
                 (r.Fleet is null ? "" : Intervals.Method));
        doc.Heading("Verdict", 2, "verdict");
        doc.Bullets(v.Headline);
        doc.Add(VerdictDetails.Build(v));
        if (r.Sensitivity is { } s) doc.Add(SensitivityReport.Build(s, f, figures));
        doc.Heading("Scenarios", 2, "scenarios");
        doc.Para("One table per scenario; columns equal under every policy are listed under it. Expectations are judged only for the policy the scenario was written for (host.policy); other policies show –.");
        foreach (var sc in r.Scenarios)
        {
            var rows = r.Rows.Where(x => x.Scenario == sc.Name).ToList();
            doc.Table(ScenarioTables.Build(sc, rows));
            if (!figures) continue;
            var snaps = r.Policies.Where(p => r.Snapshots.ContainsKey((sc.Name, p))).Select(p => (p, r.Snapshots[(sc.Name, p)])).ToList();
            if (snaps.Count > 0)
                doc.Figure(Html.PageTablePicture.Scenario(snaps), $"Page tables just after the error in \"{sc.Name}\", per policy and process (each process after the first error step that shows in its page tables; a process created later, as the scenario left it). " +
                           "Colours: " + string.Join(", ", Html.PageTablePicture.Legend.Select(l => l.Label)) + ". Zoomed bars show the 1 GiB and the 2 MiB around the first hole.");
        }
        if (r.Fleet is { } fl) doc.Add(FleetSection.Build(fl, "Default fleet", figures ? Plots.Fleet(fl, r.Bands) : null));
        return doc;
    }
}

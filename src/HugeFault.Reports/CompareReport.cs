using HugeFault.Fleet;
using HugeFault.Scenarios;
using HugeFault.Simulation;

namespace HugeFault.Reports;

/// <summary>Everything one <c>hugefault compare</c> computed.</summary>
/// <param name="Snapshots">Page tables after each (scenario, policy) run, for the HTML pictures (may be empty).</param>
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
}

/// <summary>Runs a comparison: every scenario under every policy (in parallel, results in a fixed order) and the fleet.</summary>
public static class CompareRunner
{
    public static (IReadOnlyList<RunMetrics> Rows, Dictionary<(string, string), HugeFault.Mm.PageTableSnapshot> Snapshots) RunScenarios(
        IReadOnlyList<Scenario> scenarios, IReadOnlyList<string> policies, bool snapshots, int threads)
    {
        var jobs = scenarios.SelectMany(sc => policies.Select(p => (sc, p))).ToArray();
        var rows = new RunMetrics[jobs.Length];
        var snaps = new HugeFault.Mm.PageTableSnapshot?[jobs.Length];
        Parallel.For(0, jobs.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, i =>
        {
            var run = ScenarioRunner.Run(jobs[i].sc, jobs[i].p);
            rows[i] = Comparison.Measure(run);
            if (snapshots) snaps[i] = HugeFault.Mm.PageTableSnapshot.Take(run.Kernel);
        });
        var dict = new Dictionary<(string, string), HugeFault.Mm.PageTableSnapshot>();
        for (int i = 0; i < jobs.Length; i++) if (snaps[i] is { } s) dict[(jobs[i].sc.Name, jobs[i].p)] = s;
        return (rows, dict);
    }
}

/// <summary>The compare report as a document: summary, verdict, sensitivity, then the evidence.</summary>
public static class CompareReport
{
    /// <param name="figures">Add the SVG figures (HTML): fleet charts, tornado, page-table pictures.</param>
    public static ReportDoc Build(CompareResult r, bool figures = false)
    {
        var f = r.Figures();
        var v = Verdict.Build(f, Summary.Facts(r.Fleet));
        var doc = new ReportDoc();
        string fleetPart = r.Fleet is null ? "no fleet" : $"the default fleet ({FleetSection.Metadata(r.Fleet)})";
        doc.Heading($"HugeFault: {r.Policies.Count} recovery policies on {(r.Scenarios.Count == 1 ? "1 scenario" : $"{r.Scenarios.Count} scenarios")} and {fleetPart}", 1, "top");
        doc.Table(Summary.Table(f, r.Scenarios.Count, r.Fleet is not null));
        doc.Para("Scenario columns are exact: per injected error (summed over the scenarios, divided by their errors) or the largest peak of any scenario. " +
                 (r.Fleet is null ? "" : Intervals.Method));
        doc.Heading("Verdict", 2, "verdict");
        doc.Bullets(v.Headline.Concat(v.Trades).Concat(v.Surprises));
        if (r.Sensitivity is { } s) doc.Add(SensitivityReport.Build(s, f, figures));
        doc.Heading("By metric (best first; policies in one group are statistically indistinguishable)", 2, "by-metric");
        doc.Bullets(v.ByMetric);
        doc.Heading("Scenarios", 2, "scenarios");
        doc.Para("One table per scenario; columns equal under every policy are listed under it. Expectations are judged only for the policy the scenario was written for (host.policy); other policies show –.");
        foreach (var sc in r.Scenarios)
        {
            var rows = r.Rows.Where(x => x.Scenario == sc.Name).ToList();
            doc.Table(ScenarioTables.Build(sc, rows));
            if (!figures) continue;
            var snaps = r.Policies.Where(p => r.Snapshots.ContainsKey((sc.Name, p))).Select(p => (p, r.Snapshots[(sc.Name, p)])).ToList();
            if (snaps.Count > 0)
                doc.Figure(Html.PageTablePicture.Scenario(snaps), $"Page tables at the end of \"{sc.Name}\", per policy and process. " +
                           "Colours: " + string.Join(", ", Html.PageTablePicture.Legend.Select(l => l.Label)) + ". Zoomed bars show the 1 GiB and the 2 MiB around the first hole.");
        }
        if (r.Fleet is { } fl) doc.Add(FleetSection.Build(fl, "Default fleet", figures ? Plots.Fleet(fl, r.Bands) : null));
        return doc;
    }
}

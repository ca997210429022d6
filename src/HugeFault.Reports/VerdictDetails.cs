namespace HugeFault.Reports;

/// <summary>
/// The details under the verdict: what each policy trades against the baseline (one row per group of policies whose
/// figures are the same) and every metric ranked best first.
/// </summary>
public static class VerdictDetails
{
    /// <summary>Rows of the trade-off table: policies with the same figures on every cost (fleet: indistinguishable; scenarios: equal) share one.</summary>
    public static IReadOnlyList<Verdict.Trade> Trades(PolicyFigures f, IReadOnlyList<string> ranked)
    {
        var rows = new List<Verdict.Trade>();
        if (f.Baseline is not { } bl) return rows;
        var costs = f.Metrics.Where(m => m.Cost && f.Policies.Any(p => f.Has(p, m.Key))).ToList();
        foreach (var g in Verdict.Groups(f, costs, f.Policies).Where(g => !g.Contains(bl)))
        {
            var p = g[0];
            var ms = costs.Where(m => f.Has(p, m.Key) && f.Has(bl, m.Key)).ToList();
            var better = ms.Where(m => f.Compare(m.Key, p, bl) < 0).Select(m => Against(f, m, p, bl)).ToList();
            var worse = ms.Where(m => f.Compare(m.Key, p, bl) > 0).Select(m => Against(f, m, p, bl)).ToList();
            rows.Add(new Verdict.Trade(g, better, worse, f.Missing.GetValueOrDefault(p)));
        }
        return rows;
    }

    /// <summary>"VM crashes Δ −2.16 [−2.33, −2.00]" (fleet, in the summary's units) or "page-table memory at peak 32 KiB vs 16 KiB" (exact).</summary>
    private static string Against(PolicyFigures f, MetricSpec m, string p, string b) =>
        m.Fleet ? $"{m.Label} {m.ShowDiff(f.Diff(m.Key, p, b), unit: false)}" : $"{m.Label} {m.Format(f.Value(p, m.Key).Mean)} vs {m.Format(f.Value(b, m.Key).Mean)}";

    /// <summary>Each metric: tiers of statistically indistinguishable (or equal) policies, best first.</summary>
    public static IReadOnlyList<string> ByMetric(PolicyFigures f)
    {
        var lines = new List<string>();
        foreach (var m in f.Metrics.Where(m => m.Cost))
        {
            var ps = f.Policies.Where(p => f.Has(p, m.Key)).ToList();
            if (ps.Count < 2) continue;
            var t = Verdict.Tiers(f, m, ps);
            if (t.Count > 1)
            {
                lines.Add($"{Verdict.Cap(m.Label)}: {string.Join(" < ", t.Select(tier => $"{Verdict.List(tier)} {m.Show(f.Value(tier[0], m.Key))}"))}.");
                continue;
            }
            // one tier: every policy is indistinguishable from the best, but two others may still differ (intervals do not chain)
            var differ = ps.SelectMany(a => ps.Where(b => f.Compare(m.Key, a, b) < 0).Select(b => $"{a} < {b}")).ToList();
            lines.Add(differ.Count == 0
                ? $"{Verdict.Cap(m.Label)}: all {ps.Count} policies are {(m.Fleet ? "statistically indistinguishable" : "equal")} ({m.Show(f.Value(ps[0], m.Key))})."
                : $"{Verdict.Cap(m.Label)}: every policy is indistinguishable from {t[0][0]}'s {m.Show(f.Value(t[0][0], m.Key))}; of the others, {string.Join(", ", differ)}.");
        }
        return lines;
    }

    /// <summary>The details as report blocks: the trade-off table and the rankings (collapsible in HTML).</summary>
    public static ReportDoc Build(Verdict.Result v)
    {
        var doc = new ReportDoc().DetailsStart($"Details: what each policy trades against {(v.Baseline.Length > 0 ? v.Baseline : "the others")}, and every metric best first", "details");
        if (v.Trades.Count > 0)
        {
            var t = new TextTable($"Trade-offs against {v.Baseline} (policies with the same figures share a row)",
                [new("policy", Right: false), new($"better than {v.Baseline} on", Right: false), new("pays with", Right: false)]);
            foreach (var r in v.Trades)
            {
                string better = r.Better.Count > 0 ? string.Join("; ", r.Better) : r.Worse.Count > 0 ? "nothing" : $"the same as {v.Baseline} on every cost with a figure";
                t.Row(TextCell.Of([.. r.Policies]), TextCell.Text(better), TextCell.Text(r.Worse.Count > 0 ? string.Join("; ", r.Worse) : "nothing"));
            }
            t.Notes.Add("Fleet figures are paired differences Δ [95 % CI] in the summary's units; scenario figures are exact (policy vs " + v.Baseline + ").");
            foreach (var r in v.Trades.Where(r => r.Note is not null)) t.Notes.Add($"{Verdict.List(r.Policies)}: {r.Note}.");
            doc.Table(t);
        }
        doc.Heading("By metric (best first; policies in one group are statistically indistinguishable, or equal for exact figures)", 3, "by-metric");
        doc.Bullets(v.ByMetric);
        return doc.DetailsEnd();
    }
}

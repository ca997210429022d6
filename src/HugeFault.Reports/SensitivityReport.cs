using HugeFault.Scenarios;

namespace HugeFault.Reports;

/// <summary>A directional fleet claim of the verdict: "policy has fewer/more metric than the baseline".</summary>
public sealed record Claim(string Policy, string Metric, string Label, int Sign)
{
    public string Text(string baseline) => $"{Policy}: {Label} {(Sign < 0 ? "lower" : "higher")} than {baseline}'s";
}

/// <summary>Which verdict claims survive each parameter at each end of its range, and the tornado of the headline Δ.</summary>
public static class SensitivityReport
{
    private static readonly string[] NoScenarios = [];

    public static List<Claim> Claims(PolicyFigures f)
    {
        var claims = new List<Claim>();
        if (f.Baseline is not { } bl) return claims;
        foreach (var m in f.Metrics.Where(m => m.Fleet && m.Cost))
            foreach (var p in f.Policies.Where(p => p != bl && f.Has(p, m.Key)))
            {
                int c = f.Compare(m.Key, p, bl);
                if (c != 0) claims.Add(new Claim(p, m.Key, m.Label, c));
            }
        return claims;
    }

    /// <summary>Fleet-only figures of one re-run.</summary>
    public static PolicyFigures FiguresOf(SensitivityRun run) =>
        Reports.Summary.Figures(new List<Scenario>(), run.Report.Tally.Policies, new List<RunMetrics>(), run.Report);

    /// <summary>+1 holds, 0 becomes indistinguishable, −1 flips.</summary>
    public static int Status(PolicyFigures f, Claim c)
    {
        if (f.Baseline is not { } bl || !f.Has(c.Policy, c.Metric)) return 0;
        int now = f.Compare(c.Metric, c.Policy, bl);
        return now == c.Sign ? 1 : now == 0 ? 0 : -1;
    }

    /// <summary>The headline pair: the best policy on the first fleet cost, against the baseline.</summary>
    public static (string Policy, MetricSpec Metric)? Headline(PolicyFigures f)
    {
        var m = f.Metrics.FirstOrDefault(x => x.Fleet && x.Cost);
        if (m is null || f.Baseline is null) return null;
        var tier = Verdict.Tiers(f, m, f.Policies.Where(p => f.Has(p, m.Key)).ToList())[0];
        var best = f.Policies.FirstOrDefault(p => tier.Contains(p) && p != f.Baseline);
        return best is null ? null : (best, m);
    }

    /// <summary>"VM crashes lower than mainline's: hgm, keep-mapped; live migrations higher …".</summary>
    private static string Grouped(IEnumerable<Claim> claims, string bl) =>
        string.Join("; ", claims.GroupBy(c => (c.Label, c.Sign)).Select(g => $"{g.Key.Label} {(g.Key.Sign < 0 ? "lower" : "higher")} than {bl}'s: {string.Join(", ", g.Select(c => c.Policy))}"));

    /// <summary>The verdict's sentence on the sensitivity runs: how many fleet claims hold everywhere, and where the others fail.</summary>
    public static string? Summary(SensitivityResult s, PolicyFigures main)
    {
        var claims = Claims(main);
        if (claims.Count == 0 || main.Baseline is not { } bl) return null;
        var figs = s.Runs.Select(FiguresOf).ToList();
        int ends = s.Runs.Count;
        var fails = claims.Select(c => (c, at: s.Runs.Where((r, i) => Status(figs[i], c) < 1).Select(r => $"{r.Parameter!.Key} {(r.High ? "high" : "low")}").ToList()))
            .Where(x => x.at.Count > 0).ToList();
        string head = $"Sensitivity ({Fmt.Count(s.Servers)} servers per re-run, each of {Sensitivity.Parameters.Count} assumed fleet parameters at both ends of its range): ";
        if (fails.Count == 0) return head + $"all {claims.Count} fleet claims against {bl} hold at every end.";
        string Where(IReadOnlyList<string> at) => at.Count <= 2 ? Verdict.List(at) : $"{at.Count} of the {ends} ends";
        // few: each claim with where it fails; many: one phrase per (metric, direction) with the policies
        var parts = fails.Count <= 4
            ? fails.Select(x => $"{x.c.Policy}'s {x.c.Label} {(x.c.Sign < 0 ? "lower" : "higher")} than {bl}'s (not at {Where(x.at)})")
            : fails.GroupBy(x => (x.c.Label, x.c.Sign)).Select(g =>
                $"{g.Key.Label} {(g.Key.Sign < 0 ? "lower" : "higher")} than {bl}'s for {Verdict.List(g.Select(x => x.c.Policy).ToList())} (each fails at up to {g.Max(x => x.at.Count)} of the {ends} ends)");
        return head + $"{claims.Count - fails.Count} of the {claims.Count} fleet claims against {bl} hold at every end; {(fails.Count == claims.Count ? "" : "these do not: ")}" +
               string.Join("; ", parts) + ".";
    }

    public static ReportDoc Build(SensitivityResult s, PolicyFigures main, bool figures = false)
    {
        var doc = new ReportDoc().Heading("Sensitivity to the fleet's assumed parameters", 2, "sensitivity");
        var claims = Claims(main);
        var head = Headline(main);
        var baseFig = FiguresOf(s.Baseline);
        var figs = s.Runs.Select(FiguresOf).ToList();
        string bl = main.Baseline ?? "mainline";
        var cols = new List<TextColumn> { new("parameter", Right: false), new("default"), new("low – high") };
        if (head is { } h) cols.AddRange([new($"Δ {h.Metric.Label} {h.Policy} at low"), new("at default"), new("at high")]);
        cols.Add(new("claims that do not hold (low / high)", Right: false));
        cols.Add(new("range from", Right: false));
        var t = new TextTable($"Each parameter at both ends of its range ({Fmt.Count(s.Servers)} servers per run, same seed; {claims.Count} verdict claims checked)", cols);
        var everywhere = claims.ToList();
        var tornado = new List<(string, double, double)>();
        foreach (var p in Sensitivity.Parameters)
        {
            int lo = s.Runs.ToList().FindIndex(r => r.Parameter == p && !r.High), hi = s.Runs.ToList().FindIndex(r => r.Parameter == p && r.High);
            var cells = new List<TextCell> { p.Key, Fmt.Num(p.Read(s.Config)), $"{Fmt.Num(p.Low)} – {Fmt.Num(p.High)}" };
            if (head is { } hh)
            {
                foreach (var f in new[] { figs[lo], baseFig, figs[hi] })
                {
                    var d = f.Diff(hh.Metric.Key, hh.Policy, bl);
                    cells.Add(Fmt.Delta(d.Mean, d.Lower, d.Upper)[2..]);
                }
                tornado.Add((p.Key, figs[lo].Diff(hh.Metric.Key, hh.Policy, bl).Mean, figs[hi].Diff(hh.Metric.Key, hh.Policy, bl).Mean));
            }
            string Broken(PolicyFigures f) => string.Join("; ", claims.Where(c => Status(f, c) < 1).Select(c => (Status(f, c) == 0 ? "≈ " : "✗ ") + c.Text(bl)));
            string bLo = Broken(figs[lo]), bHi = Broken(figs[hi]);
            everywhere.RemoveAll(c => Status(figs[lo], c) < 1 || Status(figs[hi], c) < 1);
            cells.Add(TextCell.Text(bLo.Length == 0 && bHi.Length == 0 ? "none" : $"low: {(bLo.Length == 0 ? "none" : bLo)} / high: {(bHi.Length == 0 ? "none" : bHi)}"));
            cells.Add(TextCell.Text(p.Source));
            t.Row(cells.ToArray());
        }
        t.Notes.Add("≈ = the claim's Δ interval includes 0 at that end; ✗ = the difference reverses.");
        doc.Table(t);
        if (figures && head is { } h2 && tornado.Count > 0)
        {
            var chart = Plots.Tornado(tornado, baseFig.Diff(h2.Metric.Key, h2.Policy, bl).Mean, $"Δ {h2.Metric.Label} {h2.Policy} − {bl} ({h2.Metric.Unit})",
                $"{Fmt.Count(s.Servers)} servers × {Fmt.Num(s.Config.Years)} year per run, seed {s.Config.Seed}");
            doc.Figure(chart.Svg, chart.Caption);
        }
        var broken = claims.Except(everywhere).ToList();
        doc.Bullets(
        [
            everywhere.Count == 0 ? "No verdict claim holds at both ends of every range." :
                $"Hold at both ends of every range ({everywhere.Count} of {claims.Count}): {Grouped(everywhere, bl)}.",
            broken.Count == 0 ? "Every verdict claim about the fleet holds at both ends of every parameter range." :
                $"Depend on an assumed parameter ({broken.Count}): {Grouped(broken, bl)}.",
        ]);
        return doc;
    }
}

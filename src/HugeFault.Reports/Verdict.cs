namespace HugeFault.Reports;

/// <summary>
/// The verdict: a few plain sentences computed from <see cref="PolicyFigures"/>, never written in advance. Each claim
/// quotes the figure it rests on (a cell of the summary table); "better", "worse" and "dominates" need a 95 % interval
/// of the difference that excludes zero (exact scenario figures: a difference visible in the table), and "statistically
/// indistinguishable" means the interval includes it. Policies whose figures are the same share one sentence; the
/// per-policy trade-offs and the rankings per metric are the details (<see cref="VerdictDetails"/>).
/// </summary>
public static partial class Verdict
{
    /// <summary>Context for causes: share of poisoned 1 GiB frames from large-footprint fault modes (null if unknown).</summary>
    public sealed record FleetFacts(double LargeFootprintFrameShare, string LargeFootprintModes);

    /// <summary>One row of the trade-off details: policies with the same figures, what they gain and pay against the baseline.</summary>
    public sealed record Trade(IReadOnlyList<string> Policies, IReadOnlyList<string> Better, IReadOnlyList<string> Worse, string? Note = null)
    {
        public string Text(string baseline) => Better.Count == 0 && Worse.Count == 0
            ? $"{List(Policies)}: the same as {baseline} on every cost with a figure{(Note is null ? "" : $" ({Note})")}."
            : $"{List(Policies)} vs {baseline}{(Note is null ? "" : $" ({Note})")}: " + (Better.Count > 0 ? $"better on {string.Join("; ", Better)}" : "better on nothing") +
              (Worse.Count > 0 ? $"; pays with {string.Join("; ", Worse)}." : "; no cost is worse.");
    }

    /// <param name="Headline">The short verdict: at most a handful of bullets.</param>
    /// <param name="Surprises">The bullets of <paramref name="Headline"/> that are surprising results with their cause.</param>
    /// <param name="Trades">Details: one row per group of policies with the same figures.</param>
    /// <param name="ByMetric">Details: every metric, best first, in tiers of indistinguishable policies.</param>
    public sealed record Result(IReadOnlyList<string> Headline, IReadOnlyList<string> Surprises, IReadOnlyList<Trade> Trades, IReadOnlyList<string> ByMetric, string Baseline)
    {
        public IEnumerable<string> All => Headline.Concat(Trades.Select(t => t.Text(Baseline))).Concat(ByMetric);
    }

    /// <param name="sensitivity">One sentence on which claims survive the assumed parameters (<see cref="SensitivityReport.Summary"/>), or null.</param>
    public static Result Build(PolicyFigures f, FleetFacts? facts = null, string? sensitivity = null)
    {
        var head = new List<string>();
        var surprises = new List<string>();
        string bl = f.Baseline ?? "";
        var costs = f.Metrics.Where(m => m.Cost).ToList();
        // claims over all costs use the policies that have every figure; a policy without (say) fleet figures is named and ranked on what it has
        var all = Ranked(f);
        var partial = f.Policies.Where(p => !all.Contains(p)).ToList();
        var primary = costs.FirstOrDefault(m => m.Fleet && all.All(p => f.Has(p, m.Key))) ?? costs.FirstOrDefault(m => all.All(p => f.Has(p, m.Key)));
        if (primary is null || all.Count == 0) return new(head, surprises, VerdictDetails.Trades(f, all), VerdictDetails.ByMetric(f), bl);
        var common = costs.Where(m => all.All(p => f.Has(p, m.Key))).ToList();
        var fleetCosts = common.Where(m => m.Fleet).ToList();
        bool hasBase = f.Baseline is not null && all.Contains(bl);

        // 1. the winners on the primary metric, against the baseline, and where the others stand
        var best = Tiers(f, primary, all)[0];
        if (hasBase && best.Contains(bl))
            head.Add($"No policy has significantly {primary.Fewer} {primary.Label} than {bl} ({primary.Show(f.Value(bl, primary.Key))}).");
        else
        {
            head.Add(Winners(f, primary, best, fleetCosts, hasBase ? bl : null) + Others(f, primary, all, best, hasBase ? bl : null));
            // 2. what the winners pay for it
            if (hasBase && Pays(f, common, best, bl) is { } pays) head.Add(pays);
        }

        // 3. dominance over every cost
        if (Dominance(f, common, all) is { } dom) head.Add(dom);

        // 4. surprising results and the cause the other figures show (policies with the same figures share a sentence)
        if (hasBase) Surprises(f, primary, facts, Groups(f, fleetCosts.Count > 0 ? fleetCosts : common, all), all, best, surprises);
        head.AddRange(surprises);

        // 5. how much of it rests on the fleet's assumed parameters, and the policies ranked only on part of the figures
        if (sensitivity is not null) head.Add(sensitivity);
        foreach (var p in partial) head.Add(Partial(f, p, all));
        return new(head, surprises, VerdictDetails.Trades(f, all), VerdictDetails.ByMetric(f), bl);
    }

    /// <summary>
    /// The policies claims over every cost are made for: those with every figure; when fewer than two have them (a
    /// fleet that models only one of the compared policies), those with every scenario figure.
    /// </summary>
    public static IReadOnlyList<string> Ranked(PolicyFigures f)
    {
        var complete = f.Complete();
        if (complete.Count >= 2) return complete;
        var scenario = f.Metrics.Where(m => m.Cost && !m.Fleet && f.Policies.Any(p => f.Has(p, m.Key))).ToList();
        return f.Policies.Where(p => scenario.All(m => f.Has(p, m.Key))).ToList();
    }

    private static string Winners(PolicyFigures f, MetricSpec m, IReadOnlyList<string> best, IReadOnlyList<MetricSpec> fleetCosts, string? bl)
    {
        var b0 = best[0];
        string value = m.Show(f.Value(b0, m.Key));
        string s = $"{Cap(m.Fewest)} {m.Label}: {List(best)}, {value}";
        if (bl is not null)
        {
            var d = f.Diff(m.Key, b0, bl);
            bool same = best.All(p => m.Show(f.Value(p, m.Key)) == value && m.ShowDiff(f.Diff(m.Key, p, bl)) == m.ShowDiff(d));
            s += $"{(same ? "" : $" ({b0})")} against {bl}'s {m.Show(f.Value(bl, m.Key))} ({m.ShowDiff(d, unit: false)}{Pct(d.Mean, f.Value(bl, m.Key).Mean)})";
        }
        if (best.Count > 1)
        {
            bool everyFleet = fleetCosts.Count > 1 && best.All(p => best.All(q => fleetCosts.All(x => f.Compare(x.Key, p, q) == 0)));
            s += $"; the {Count(best.Count)} are {(m.Fleet ? "statistically indistinguishable" : "equal")} on {(everyFleet ? "every fleet metric" : m.Label)}";
        }
        return s;
    }

    /// <summary>"; also fewer than mainline: copy-around … (Δ …) and repair …; not fewer: …".</summary>
    private static string Others(PolicyFigures f, MetricSpec m, IReadOnlyList<string> all, IReadOnlyList<string> best, string? bl)
    {
        var rest = all.Where(p => !best.Contains(p) && p != bl).OrderBy(p => f.Value(p, m.Key).Mean).ToList();
        if (rest.Count == 0) return ".";
        string Fig(string p) => bl is null ? $"{p} {m.Format(f.Value(p, m.Key).Mean)}" : $"{p} ({m.ShowDiff(f.Diff(m.Key, p, bl), unit: false)})";
        if (bl is null) return $"; then {List(rest.Select(Fig).ToList())}.";
        var better = rest.Where(p => f.Compare(m.Key, p, bl) < 0).ToList();
        var notBetter = rest.Where(p => f.Compare(m.Key, p, bl) >= 0).ToList();
        string s = better.Count > 0 ? $"; also {m.Fewer} than {bl}: {List(better.Select(Fig).ToList())}" : "";
        if (notBetter.Count > 0) s += $"; not {m.Fewer} than {bl}: {List(notBetter.Select(Fig).ToList())}";
        return s + ".";
    }

    /// <summary>"What they pay against mainline: live migrations Δ … (all 5); page-table memory at peak 6.02 MiB (…), 32 KiB (hgm) against 16 KiB. keep-mapped pays only the live migrations."</summary>
    private static string? Pays(PolicyFigures f, IReadOnlyList<MetricSpec> common, IReadOnlyList<string> best, string bl)
    {
        var parts = new List<string>();
        var worseOn = best.ToDictionary(p => p, _ => new List<MetricSpec>());
        foreach (var m in common)
        {
            var worse = best.Where(p => f.Compare(m.Key, p, bl) > 0).ToList();
            if (worse.Count == 0) continue;
            foreach (var p in worse) worseOn[p].Add(m);
            var byFigure = worse.GroupBy(p => m.Fleet ? m.ShowDiff(f.Diff(m.Key, p, bl)) : m.Format(f.Value(p, m.Key).Mean))
                .OrderByDescending(g => f.Value(g.First(), m.Key).Mean).ToList();
            string Who(IReadOnlyList<string> ps) => best.Count == 1 ? "" : ps.Count == best.Count ? (best.Count == 2 ? " (both)" : $" (all {Count(best.Count)})") : $" ({List(ps)})";
            parts.Add($"{m.Label} {string.Join(", ", byFigure.Select(g => g.Key + Who(g.ToList())))}" + (m.Fleet ? "" : $" against {m.Format(f.Value(bl, m.Key).Mean)}"));
        }
        if (parts.Count == 0) return null;
        string s = $"What {(best.Count == 1 ? "it pays" : "they pay")} against {bl}: {string.Join("; ", parts)}.";
        int least = worseOn.Values.Min(l => l.Count);
        if (best.Count > 1 && least < worseOn.Values.Max(l => l.Count))
        {
            var cheapest = best.Where(p => worseOn[p].Count == least).ToList();
            string verb = cheapest.Count == 1 ? "pays" : "pay";
            s += least == 0 ? $" {List(cheapest)} {verb} nothing on any cost." : $" {List(cheapest)} {verb} only in {List(worseOn[cheapest[0]].Select(m => m.Label).ToList())}.";
        }
        return s;
    }

    private static string? Dominance(PolicyFigures f, IReadOnlyList<MetricSpec> common, IReadOnlyList<string> all)
    {
        var dominated = new List<string>();
        foreach (var b in all)
        {
            var by = all.Where(a => a != b && Dominates(f, common, a, b)).ToList();
            if (by.Count == 0) continue;
            var a0 = by[0];
            var wins = common.Where(m => f.Compare(m.Key, a0, b) < 0).Take(2).Select(m => $"{m.Label} {Fig(f, m, a0)} vs {Fig(f, m, b)}");
            dominated.Add($"{b} is dominated by {List(by)} ({a0}: {string.Join(", ", wins)})");
        }
        var front = all.Where(b => !all.Any(a => a != b && Dominates(f, common, a, b))).ToList();
        if (dominated.Count == 0) return $"No policy is dominated (no worse on every one of the {common.Count} costs and better on one) by another.";
        return $"Over all {common.Count} costs, {string.Join("; ", dominated)}; {List(front)} {(front.Count == 1 ? "is" : "are")} dominated by none.";
    }

    private static string Partial(PolicyFigures f, string p, IReadOnlyList<string> all)
    {
        string why = f.Missing.GetValueOrDefault(p, "no figures for some metrics");
        var mine = f.Metrics.Where(m => m.Cost && f.Has(p, m.Key)).ToList();
        var same = all.Where(q => mine.All(m => f.Has(q, m.Key) && f.Compare(m.Key, p, q) == 0)).ToList();
        return same.Count > 0
            ? $"{p}: {why}; on the {mine.Count} metrics it has, its figures equal {(same.Count == 1 ? same[0] + "'s" : "those of " + List(same))}."
            : $"{p}: {why}; it is ranked on the {mine.Count} metrics it has in the details.";
    }

    /// <summary>a dominates b: no cost significantly worse, at least one significantly better.</summary>
    public static bool Dominates(PolicyFigures f, IReadOnlyList<MetricSpec> costs, string a, string b)
    {
        bool better = false;
        foreach (var m in costs)
        {
            int c = f.Compare(m.Key, a, b);
            if (c > 0) return false;
            if (c < 0) better = true;
        }
        return better;
    }

    /// <summary>Tiers best first: each holds the best remaining policy and every policy indistinguishable from it.</summary>
    public static List<List<string>> Tiers(PolicyFigures f, MetricSpec m, IReadOnlyList<string> policies)
    {
        var rest = policies.OrderBy(p => f.Value(p, m.Key).Mean).ToList();
        var tiers = new List<List<string>>();
        while (rest.Count > 0)
        {
            var lead = rest[0];
            var tier = policies.Where(p => rest.Contains(p) && f.Compare(m.Key, p, lead) == 0).ToList();
            tiers.Add(tier);
            rest.RemoveAll(tier.Contains);
        }
        return tiers;
    }

    /// <summary>Groups of policies, each indistinguishable (pairwise) on every one of <paramref name="metrics"/>.</summary>
    internal static List<List<string>> Groups(PolicyFigures f, IReadOnlyList<MetricSpec> metrics, IReadOnlyList<string> policies)
    {
        var groups = new List<List<string>>();
        if (metrics.Count == 0) return groups;
        foreach (var p in policies)
        {
            var g = groups.FirstOrDefault(g => g.All(q => metrics.All(m => f.Has(p, m.Key) == f.Has(q, m.Key) && (!f.Has(p, m.Key) || f.Compare(m.Key, p, q) == 0))));
            if (g is null) groups.Add([p]); else g.Add(p);
        }
        return groups;
    }

    /// <summary>A value as the summary table prints it (fleet: "1.60 [1.48, 1.73]"; exact: "16 KiB").</summary>
    internal static string Fig(PolicyFigures f, MetricSpec m, string p)
    {
        var v = f.Value(p, m.Key);
        return m.Fleet ? Fmt.Interval(v.Mean, v.Lower, v.Upper) : m.Format(v.Mean);
    }

    private static string Pct(double delta, double baseValue) => baseValue == 0 ? "" : ", " + (delta < 0 ? Fmt.Minus : "+") + Fmt.Num(Math.Abs(delta / baseValue) * 100, 2) + " %";
    internal static string Cap(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
    /// <summary>Capitalises a sentence that starts with an article; a policy name stays as it is spelt.</summary>
    internal static string Start(string s) => s.StartsWith("the ", StringComparison.Ordinal) ? Cap(s) : s;
    private static readonly string[] Words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
    private static string Count(int n) => n < Words.Length ? Words[n] : Fmt.Count(n);

    /// <summary>"a", "a and b", "a, b and c".</summary>
    public static string List(IReadOnlyList<string> xs) => xs.Count switch
    {
        0 => "none",
        1 => xs[0],
        _ => string.Join(", ", xs.Take(xs.Count - 1)) + " and " + xs[^1],
    };
}

namespace HugeFault.Reports;

/// <summary>
/// The verdict: plain sentences computed from <see cref="PolicyFigures"/>, never written in advance. Each claim
/// quotes the figure it rests on; "better", "worse" and "dominates" need a 95 % interval of the difference that
/// excludes zero, and "statistically indistinguishable" means the interval includes it.
/// </summary>
public static class Verdict
{
    /// <summary>Context for causes: share of poisoned 1 GiB frames from large-footprint fault modes (null if unknown).</summary>
    public sealed record FleetFacts(double LargeFootprintFrameShare, string LargeFootprintModes);

    public sealed record Result(IReadOnlyList<string> Headline, IReadOnlyList<string> ByMetric, IReadOnlyList<string> Trades, IReadOnlyList<string> Surprises)
    {
        public IEnumerable<string> All => Headline.Concat(ByMetric).Concat(Trades).Concat(Surprises);
    }

    public static Result Build(PolicyFigures f, FleetFacts? facts = null)
    {
        var head = new List<string>();
        var byMetric = new List<string>();
        var trades = new List<string>();
        var surprises = new List<string>();
        var costs = f.Metrics.Where(m => m.Cost).ToList();
        // claims over all costs use the policies that have every figure; a policy without (say) fleet figures is named and ranked on what it has
        var all = Ranked(f);
        var partial = f.Policies.Where(p => !all.Contains(p)).ToList();
        var primary = costs.FirstOrDefault(m => m.Fleet && all.All(p => f.Has(p, m.Key))) ?? costs.FirstOrDefault(m => all.All(p => f.Has(p, m.Key)));
        if (primary is null || all.Count == 0) return new(head, byMetric, trades, surprises);

        // 1. the headline: who is best on the primary metric, against the baseline
        var tiers = Tiers(f, primary, all);
        var best = all.Where(tiers[0].Contains).ToList();
        if (f.Baseline is { } bl && all.Contains(bl))
        {
            if (best.Contains(bl))
                head.Add($"No policy has significantly {primary.Fewer} {primary.Label} than {bl} ({primary.Show(f.Value(bl, primary.Key))}).");
            else
            {
                var d = f.Diff(primary.Key, best[0], bl);
                head.Add($"{Cap(primary.Fewest)} {primary.Label}: {List(best)} at {primary.Show(f.Value(best[0], primary.Key))}{(best.Count > 1 ? $" ({best[0]})" : "")} against {bl}'s " +
                         $"{primary.Show(f.Value(bl, primary.Key))} ({primary.ShowDiff(d)}, {Pct(d.Mean, f.Value(bl, primary.Key).Mean)})" +
                         (best.Count > 1 ? $"; {(best.Count == 2 ? "the two are" : "these are")} {(primary.Fleet ? "statistically indistinguishable from" : "equal to")} each other." : "."));
            }
        }
        foreach (var p in partial)
            head.Add($"{p}: {f.Missing.GetValueOrDefault(p, "no figures for some metrics")}; it is ranked only on the metrics it has (by metric, below).");

        // 2. policies that no fleet figure tells apart, and the Pareto front over every cost
        var fleetCosts = costs.Where(m => m.Fleet && all.All(p => f.Has(p, m.Key))).ToList();
        foreach (var g in Groups(f, fleetCosts, all).Where(g => g.Count > 1))
            head.Add($"On every fleet metric ({string.Join(", ", fleetCosts.Select(m => m.Label))}), {List(g)} are statistically indistinguishable (every Δ interval between them includes 0).");
        var common = costs.Where(m => all.All(p => f.Has(p, m.Key))).ToList();
        var dominated = new List<string>();
        foreach (var b in all)
        {
            var by = all.Where(a => a != b && Dominates(f, common, a, b)).ToList();
            if (by.Count == 0) continue;
            var a0 = by[0];
            var wins = common.Where(m => f.Compare(m.Key, a0, b) < 0).Select(m => $"{m.Label} {m.Format(f.Value(a0, m.Key).Mean)} vs {m.Format(f.Value(b, m.Key).Mean)}").Take(3);
            dominated.Add($"{b} is dominated by {List(by)} (no worse on any of the {common.Count} costs; {a0} is better on {string.Join(", ", wins)})");
        }
        var front = all.Where(b => !all.Any(a => a != b && Dominates(f, common, a, b))).ToList();
        head.Add($"Not dominated by any other policy over all {common.Count} costs: {List(front)}." + (dominated.Count > 0 ? " " + string.Join("; ", dominated) + "." : ""));

        // 3. each metric: tiers of statistically indistinguishable policies, best first
        foreach (var m in costs)
        {
            var ps = f.Policies.Where(p => f.Has(p, m.Key)).ToList();
            if (ps.Count < 2) continue;
            var t = Tiers(f, m, ps);
            byMetric.Add(t.Count == 1
                ? $"{Cap(m.Label)}: all {ps.Count} policies are {(m.Fleet ? "statistically indistinguishable" : "equal")} ({m.Show(f.Value(ps[0], m.Key))})."
                : $"{Cap(m.Label)}: {string.Join(" < ", t.Select(tier => $"{List(tier)} {m.Show(f.Value(tier[0], m.Key))}"))}.");
        }

        // 4. what each design trades against the baseline (a policy without some figures: on the metrics it has)
        if (f.Baseline is { } b0)
        {
            foreach (var p in f.Policies.Where(p => p != b0))
            {
                var ms = costs.Where(m => f.Has(p, m.Key) && f.Has(b0, m.Key)).ToList();
                string on = partial.Contains(p) ? " (on the metrics it has)" : "";
                var gains = ms.Where(m => f.Compare(m.Key, p, b0) < 0).Select(m => Against(f, m, p, b0)).ToList();
                var losses = ms.Where(m => f.Compare(m.Key, p, b0) > 0).Select(m => Against(f, m, p, b0)).ToList();
                if (gains.Count == 0 && losses.Count == 0) { trades.Add($"{p} is indistinguishable from {b0} on every cost{on}."); continue; }
                trades.Add($"{p} vs {b0}{on}: " + (gains.Count > 0 ? $"better on {string.Join("; ", gains)}" : "better on nothing") +
                           (losses.Count > 0 ? $"; pays with {string.Join("; ", losses)}." : "; no cost is worse."));
            }
        }

        // 5. surprising results and the cause the other figures show (one sentence per group of indistinguishable policies)
        Surprises(f, primary, facts, Groups(f, fleetCosts.Count > 0 ? fleetCosts : common, all), all, surprises);
        return new(head, byMetric, trades, surprises);
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

    private static void Surprises(PolicyFigures f, MetricSpec primary, FleetFacts? facts, List<List<string>> groups, IReadOnlyList<string> all, List<string> s)
    {
        if (f.Baseline is not { } bl || !all.Contains(bl)) return;
        bool Known(string key) => f.Metrics.Any(m => m.Key == key) && all.All(p => f.Has(p, key));
        foreach (var g in groups.Where(g => !g.Contains(bl)))
        {
            var p = g[0];
            if (f.Compare(primary.Key, p, bl) >= 0) continue;
            var crashes = f.Diff(primary.Key, p, bl);
            string who = g.Count == 1 ? p : $"{List(g)} (figures for {p})";
            string fewer = $"{primary.Fewer} {primary.Label} ({primary.ShowDiff(crashes)})";
            if (Known("live_migrations") && f.Compare("live_migrations", p, bl) > 0)
            {
                var d = f.Diff("live_migrations", p, bl);
                s.Add($"{who} live-migrate{(g.Count == 1 ? "s" : "")} more VMs than {bl} ({f.Metric("live_migrations").ShowDiff(d)}) because {(g.Count == 1 ? "it has" : "they have")} {fewer}: more damaged VMs survive to be evacuated when their DIMM is replaced.");
            }
            if (Known("guest_memory_lost") && f.Compare("guest_memory_lost", p, bl) > 0)
            {
                var d = f.Diff("guest_memory_lost", p, bl);
                string fb = "";
                if (Known("fallbacks") && Known("ue_events") && f.Value(p, "fallbacks").Mean > 0 && f.Value(p, "ue_events").Mean > 0)
                    fb = $", and it falls back on {Fmt.Percent(f.Value(p, "fallbacks").Mean / f.Value(p, "ue_events").Mean)} of UE events, where it loses what {bl} loses";
                s.Add($"{who} lose{(g.Count == 1 ? "s" : "")} more guest memory than {bl} ({f.Metric("guest_memory_lost").ShowDiff(d)}) although {(g.Count == 1 ? "it has" : "they have")} {fewer}: VMs that survive an error keep running on the damaged DIMM and lose memory again at later errors{fb}.");
            }
        }
        if (Known("stranded"))
        {
            var m = f.Metric("stranded");
            double baseMean = f.Value(bl, "stranded").Mean;
            var moves = all.Where(p => p != bl).Select(p => (p, d: f.Diff("stranded", p, bl))).OrderBy(x => x.d.Mean).ToList();
            if (moves.Count > 0 && baseMean > 0 && Math.Abs(moves[0].d.Mean) < 0.25 * baseMean)
            {
                string cause = facts is { LargeFootprintFrameShare: > 0.5 }
                    ? $": {Fmt.Percent(facts.LargeFootprintFrameShare)} of the 1 GiB frames that see errors are hit by {facts.LargeFootprintModes} faults, which poison lines in every frame of the rank until the DIMM is replaced, so no recovery design saves them"
                    : "";
                s.Add($"{Cap(m.Label)} hardly depends on the policy: the largest change against {bl} is {moves[0].p}'s {m.ShowDiff(moves[0].d)}, {Pct(moves[0].d.Mean, baseMean)} of {bl}'s {m.Show(f.Value(bl, "stranded"))}{cause}.");
            }
        }
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
            var tier = rest.Where(p => f.Compare(m.Key, p, lead) == 0).ToList();
            tiers.Add(tier);
            rest.RemoveAll(tier.Contains);
        }
        return tiers;
    }

    /// <summary>Connected groups of policies indistinguishable on every one of <paramref name="metrics"/>.</summary>
    private static List<List<string>> Groups(PolicyFigures f, IReadOnlyList<MetricSpec> metrics, IReadOnlyList<string> policies)
    {
        var groups = new List<List<string>>();
        if (metrics.Count == 0) return groups;
        foreach (var p in policies)
        {
            var g = groups.FirstOrDefault(g => g.All(q => metrics.All(m => f.Compare(m.Key, p, q) == 0)));
            if (g is null) groups.Add([p]); else g.Add(p);
        }
        return groups;
    }

    private static string Against(PolicyFigures f, MetricSpec m, string p, string b)
    {
        if (!m.Fleet) return $"{m.Label} {m.Format(f.Value(p, m.Key).Mean)} vs {m.Format(f.Value(b, m.Key).Mean)}";
        return $"{m.Label} {m.ShowDiff(f.Diff(m.Key, p, b))}";
    }

    private static string Pct(double delta, double baseValue) => baseValue == 0 ? "" : (delta < 0 ? Fmt.Minus : "+") + Fmt.Num(Math.Abs(delta / baseValue) * 100, 2) + " %";
    private static string Cap(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    /// <summary>"a", "a and b", "a, b and c".</summary>
    public static string List(IReadOnlyList<string> xs) => xs.Count switch
    {
        0 => "none",
        1 => xs[0],
        _ => string.Join(", ", xs.Take(xs.Count - 1)) + " and " + xs[^1],
    };
}

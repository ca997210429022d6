namespace HugeFault.Reports;

/// <summary>The surprising results of the verdict, each with the cause the other figures show.</summary>
public static partial class Verdict
{
    private static void Surprises(PolicyFigures f, MetricSpec primary, FleetFacts? facts, List<List<string>> groups, IReadOnlyList<string> all,
        IReadOnlyList<string> best, List<string> s)
    {
        string bl = f.Baseline!;
        bool Known(string key) => f.Metrics.Any(m => m.Key == key) && all.All(p => f.Has(p, key));
        var fewer = groups.Where(g => !g.Contains(bl) && f.Compare(primary.Key, g[0], bl) < 0).ToList();
        // names a group of policies with the same figures; the winners of the first sentence by reference
        string Who(List<string> g) => best.Count >= 3 && g.Count == best.Count && g.All(best.Contains) ? $"the {Count(g.Count)} with the {primary.Fewest} {primary.Label}" : List(g);

        // a design that panics hosts: every VM on the host dies with it
        if (Known("host_panics"))
        {
            var hp = f.Metric("host_panics");
            foreach (var g in groups.Where(g => !g.Contains(bl) && f.Compare(hp.Key, g[0], bl) > 0))
            {
                var p = g[0];
                bool moreCrashes = f.Compare(primary.Key, p, bl) > 0;
                string one = g.Count == 1 ? "s" : "";
                s.Add($"{Start(Who(g))} panic{one} the host {hp.Show(f.Value(p, hp.Key))} against {bl}'s {hp.Show(f.Value(bl, hp.Key))}: " +
                      "its kernel-mode read of the poisoned page consumes a bad line of the same fault that nobody had reported yet, which x86 cannot recover, and every VM on the host dies" +
                      (moreCrashes ? $", so {(g.Count == 1 ? "it has" : "they have")} more {primary.Label} than {bl} ({primary.ShowDiff(f.Diff(primary.Key, p, bl), unit: false)})." : "."));
            }
        }

        // policies that keep VMs alive evacuate more of them
        if (Known("live_migrations"))
        {
            var lm = f.Metric("live_migrations");
            var more = fewer.Where(g => f.Compare(lm.Key, g[0], bl) > 0).OrderByDescending(g => f.Diff(lm.Key, g[0], bl).Mean).ToList();
            if (more.Count > 0)
            {
                string who = more.Count == fewer.Count && fewer.Count > 1
                    ? $"Every policy with {primary.Fewer} {primary.Label} than {bl} also live-migrates more VMs"
                    : $"{List(more.SelectMany(g => g).ToList())} live-migrate{(more.Sum(g => g.Count) == 1 ? "s" : "")} more VMs than {bl}";
                // the winners' Δ is already in "what they pay"
                bool Quoted(List<string> g) => g.All(best.Contains) && best.All(p => f.Compare(lm.Key, p, bl) > 0);
                var by = more.Select(g => Quoted(g) ? $"{Who(g)} by the Δ above" : $"{Who(g)} by {lm.ShowDiff(f.Diff(lm.Key, g[0], bl), unit: false)}").ToList();
                s.Add($"{who}: {List(by)} {lm.Unit}; more damaged VMs survive to be evacuated when their DIMM is replaced.");
            }
        }

        // policies that keep VMs alive can lose more guest memory later
        if (Known("guest_memory_lost"))
        {
            var gm = f.Metric("guest_memory_lost");
            foreach (var g in fewer.Where(g => f.Compare(gm.Key, g[0], bl) > 0))
            {
                var p = g[0];
                var d = f.Diff(gm.Key, p, bl);
                string one = g.Count == 1 ? "s" : "";
                string fb = "";
                if (Known("fallbacks") && Known("ue_events") && f.Value(p, "fallbacks").Mean > 0 && f.Value(p, "ue_events").Mean > 0)
                    fb = $", and {(g.Count == 1 ? "it falls" : "they fall")} back on {Fmt.Percent(f.Value(p, "fallbacks").Mean / f.Value(p, "ue_events").Mean)} of UE events, where {(g.Count == 1 ? "it loses" : "they lose")} what {bl} loses";
                s.Add($"{Start(Who(g))} lose{one} more guest memory than {bl} ({gm.ShowDiff(d)}) although {(g.Count == 1 ? "it has" : "they have")} {primary.Fewer} {primary.Label} " +
                      $"({primary.ShowDiff(f.Diff(primary.Key, p, bl), unit: false)}): VMs that survive an error keep running on the damaged DIMM and lose memory again at later errors{fb}.");
            }
        }

        // stranded capacity that no design saves
        if (Known("stranded"))
        {
            var m = f.Metric("stranded");
            double baseMean = f.Value(bl, m.Key).Mean;
            var moves = all.Where(p => p != bl).Select(p => (p, d: f.Diff(m.Key, p, bl))).OrderBy(x => x.d.Mean).ToList();
            if (moves.Count > 0 && baseMean > 0 && Math.Abs(moves[0].d.Mean) < 0.25 * baseMean)
            {
                string cause = facts is { LargeFootprintFrameShare: > 0.5 }
                    ? $": {Fmt.Percent(facts.LargeFootprintFrameShare)} of the 1 GiB frames that see errors are hit by {facts.LargeFootprintModes} faults, which poison lines in every frame of the rank until the DIMM is replaced, so no recovery design saves them"
                    : "";
                s.Add($"{Cap(m.Label)} hardly depends on the policy: the largest change is {moves[0].p}'s {m.ShowDiff(moves[0].d, unit: false)}{Pct(moves[0].d.Mean, baseMean)} of {bl}'s {m.Show(f.Value(bl, m.Key))}{cause}.");
            }
        }
    }
}

using HugeFault.Fleet;
using HugeFault.Policies;
using HugeFault.Scenarios;

namespace HugeFault.Reports;

/// <summary>
/// The summary: one row per policy over all compared scenarios and the default fleet. Fleet columns are means per
/// server-year (or per 1,000 VM-years) with 95 % intervals and the paired Δ vs mainline; scenario columns are exact,
/// per injected error (summed over scenarios, divided by their errors) or the largest peak of any scenario.
/// </summary>
public static class Summary
{
    private const double GiB = 1L << 30;

    /// <summary>The fleet metrics of the summary: (figure key, fleet metric name, label, unit, format, cost).</summary>
    private static readonly (string Key, string Fleet, string Label, string Unit, bool Cost, bool Amount)[] FleetMetrics =
    [
        ("vm_crashes", "vm_crashes", "VM crashes", "per 1,000 VM-years", true, false),
        ("stranded", "stranded_gib_days", "stranded capacity", "GiB-days per server", true, true),
        ("guest_memory_lost", "guest_memory_lost_gib", "guest memory lost", "GiB per server", true, true),
        ("live_migrations", "live_migrations", "live migrations", "per server", true, false),
        ("ue_events", "ue_events", "UE events", "per server", false, false),
        ("fallbacks", "fallbacks", "fallbacks", "per server", false, false),
    ];

    /// <summary>Counts injected memory errors of a scenario: hw_error, corrupt_pfn and madvise(MADV_HWPOISON) steps.</summary>
    public static int ErrorSteps(Scenario sc) => sc.Steps.Count(IsErrorStep);

    /// <summary>A step that injects a memory error: hw_error, corrupt_pfn or madvise(MADV_HWPOISON).</summary>
    public static bool IsErrorStep(Step s) => s.Op is "hw_error" or "corrupt_pfn"
        || (s.Op == "madvise" && s.Args.TryGetValue("advice", out var a) && a.Text == "MADV_HWPOISON");

    /// <summary>The per-policy figures of a comparison (scenario rows and, if run, the fleet).</summary>
    public static PolicyFigures Figures(IReadOnlyList<Scenario> scenarios, IReadOnlyList<string> policies, IReadOnlyList<RunMetrics> rows, FleetReport? fleet)
    {
        var metrics = new List<MetricSpec>();
        var fleetRows = fleet?.Rows().ToList();
        if (fleetRows is not null)
            foreach (var m in FleetMetrics) metrics.Add(new MetricSpec(m.Key, m.Label, m.Unit, Fmt.Num, Fleet: true, Cost: m.Cost, Amount: m.Amount));
        metrics.AddRange(
        [
            new("sc_guest_lost", "guest memory lost per error", "", Fmt.Bytes, false, Amount: true),
            new("sc_good_lost", "good data lost per error", "", Fmt.Bytes, false, Amount: true),
            new("sc_extra", "extra memory at peak", "", Fmt.Bytes, false, Amount: true),
            new("sc_page_tables", "page-table memory at peak", "", Fmt.Bytes, false, Amount: true),
            new("sc_entries", "entries written per error", "", x => Fmt.Count((long)Math.Round(x)), false),
            new("sc_copied", "pages copied per error", "", x => Fmt.Count((long)Math.Round(x)), false),
            new("sc_mapcount", "mapcount updates per error", "", x => Fmt.Count((long)Math.Round(x)), false),
            new("sc_stall", "post-copy stall p99", "", Fmt.Duration, false, Amount: true),
            new("sc_fake", "destination fake-poison per error", "", Fmt.Bytes, false, Amount: true),
        ]);
        var f = new PolicyFigures(policies, metrics);
        var byScenario = scenarios.ToDictionary(s => s.Name, s => s);
        foreach (var p in policies)
        {
            var mine = rows.Where(r => r.Policy == p).ToList();
            double errors = mine.Sum(r => ErrorSteps(byScenario[r.Scenario]));
            var vm = mine.Where(r => r.VmsTotal > 0).ToList();
            double vmErrors = vm.Sum(r => ErrorSteps(byScenario[r.Scenario]));
            var mig = mine.Where(r => r.Migrations > r.MigrationsRefused && ErrorSteps(byScenario[r.Scenario]) > 0).ToList();
            double migErrors = mig.Sum(r => ErrorSteps(byScenario[r.Scenario]));
            double Per(double sum, double n) => n > 0 ? sum / n : 0;
            void Set(string key, double v) => f.Values[(p, key)] = Estimate.Exact(v);
            if (mine.Count > 0)
            {
                if (vm.Count > 0) Set("sc_guest_lost", Per(vm.Sum(r => (double)r.GuestMemoryLostBytes), vmErrors));
                Set("sc_good_lost", Per(mine.Sum(r => (double)r.GoodDataLostBytes), errors));
                Set("sc_extra", mine.Max(r => (double)r.ExtraPeakBytes));
                Set("sc_page_tables", mine.Max(r => (double)r.PageTablePeakBytes));
                Set("sc_entries", Per(mine.Sum(r => (double)r.EntriesWritten), errors));
                Set("sc_copied", Per(mine.Sum(r => (double)r.PagesCopied), errors));
                Set("sc_mapcount", Per(mine.Sum(r => (double)r.MapcountUpdates), errors));
                if (mine.Any(r => r.Migrations > 0)) Set("sc_stall", mine.Max(r => (double)r.PostcopyStallP99Ns));
                if (mig.Count > 0) Set("sc_fake", Per(mig.Sum(r => (double)r.FakePoisonedBytes), migErrors));
            }
            if (fleetRows is not null && !fleetRows.Any(r => r.Policy == p))
                f.Missing[p] = FleetPolicies.TryParse(p, out _) ? "no fleet figures (not in this fleet run)" : "no fleet figures (the fleet does not model it yet)";
            if (fleetRows is not null)
                foreach (var m in FleetMetrics)
                    if (fleetRows.FirstOrDefault(r => r.Policy == p && r.Metric == m.Fleet) is { } fr)
                    {
                        f.Values[(p, m.Key)] = new(fr.Value.Mean, fr.Value.Lower, fr.Value.Upper);
                        if (fr.DiffVsMainline is { } d) f.Deltas[(p, m.Key)] = new(d.Mean, d.Lower, d.Upper);
                    }
            if (RecoveryPolicies.Exists(p) && RecoveryPolicies.Describe(p).FallsBackWhen is { } fb) f.Notes[p] = fb;
        }
        return f;
    }

    /// <summary>Large-footprint fault modes (more than one 1 GiB frame per pattern on average) and their share of poisoned frames.</summary>
    public static Verdict.FleetFacts? Facts(FleetReport? fleet)
    {
        if (fleet is null) return null;
        var t = fleet.Tally;
        long all = t.ModeFrames.Sum();
        if (all == 0) return null;
        var large = Enumerable.Range(0, t.ModeFrames.Length).Where(i => t.ModePatterns[i] > 0 && (double)t.ModeFrames[i] / t.ModePatterns[i] >= 2).ToList();
        return new Verdict.FleetFacts(large.Sum(i => (double)t.ModeFrames[i]) / all, Verdict.List(large.Select(FleetReport.ModeName).ToList()));
    }

    /// <summary>The summary table: one row per policy; a fleet cell is "mean [CI]" over "Δ [CI]".</summary>
    public static TextTable Table(PolicyFigures f, int scenarios = -1, bool fleet = true)
    {
        var metrics = f.Metrics.Where(m => m.Cost && f.Policies.Any(p => f.Has(p, m.Key))).ToList();
        var cols = new List<TextColumn> { new("policy", Right: false) };
        cols.AddRange(metrics.Select(m => new TextColumn(m.Fleet ? $"{m.Label} ({m.Unit})" : m.Label)));
        cols.Add(new TextColumn("falls back when", Right: false));
        string over = scenarios < 0 ? "the scenarios" : scenarios == 1 ? "1 scenario" : $"{scenarios} scenarios";
        var t = new TextTable($"Summary: every policy over {over}{(fleet ? " and the default fleet" : "")}", cols);
        foreach (var p in f.Policies)
        {
            var cells = new List<TextCell> { IsExtrapolation(p) ? p + " *" : p };
            foreach (var m in metrics)
            {
                if (!f.Has(p, m.Key)) { cells.Add("–"); continue; }
                var v = f.Value(p, m.Key);
                if (!m.Fleet) { cells.Add(m.Format(v.Mean)); continue; }
                string first = Fmt.Interval(v.Mean, v.Lower, v.Upper);
                cells.Add(f.Deltas.TryGetValue((p, m.Key), out var d) ? TextCell.Of(first, Fmt.Delta(d.Mean, d.Lower, d.Upper)) : TextCell.Of(first));
            }
            cells.Add(TextCell.Text(f.Notes.GetValueOrDefault(p, "never")));
            t.Row(cells.ToArray());
        }
        foreach (var (p, why) in f.Policies.Where(f.Missing.ContainsKey).Select(p => (p, f.Missing[p])))
            t.Notes.Add($"{p}: {why}; its cells there are –.");
        var extrapolated = f.Policies.Where(IsExtrapolation).ToList();
        if (extrapolated.Count > 0)
            t.Notes.Add("* extrapolation, not a posted design: " + string.Join("; ", extrapolated.Select(p => $"{p}: {Provenance(p)}")) + ".");
        var posted = f.Policies.Where(p => RecoveryPolicies.Exists(p) && RecoveryPolicies.Provenance(p).StartsWith("as posted", StringComparison.Ordinal)).ToList();
        if (posted.Count > 0)
            t.Notes.Add("As posted to the lists: " + string.Join("; ", posted.Select(p => $"{p}: {Provenance(p)}")) + ".");
        return t;
    }

    private static bool IsExtrapolation(string policy) => RecoveryPolicies.Exists(policy) && RecoveryPolicies.Describe(policy).Extrapolation;

    /// <summary>The provenance text without its "extrapolation: " / "as posted: " lead.</summary>
    private static string Provenance(string policy)
    {
        string s = RecoveryPolicies.Provenance(policy);
        int colon = s.IndexOf(": ", StringComparison.Ordinal);
        return colon > 0 ? s[(colon + 2)..] : s;
    }
}

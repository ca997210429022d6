namespace HugeFault.Reports.Tests;

/// <summary>The verdict is computed from the figures: change the figures and the sentences change with them.</summary>
public class VerdictTests
{
    private static readonly string[] Policies = ["mainline", "hgm", "keep-mapped", "copy-around"];

    /// <summary>A fabricated fleet: crashes, migrations and guest memory per policy, each with a paired Δ vs mainline.</summary>
    private static PolicyFigures Fleet(double hgmCrashes = 1.6, double hgmDeltaHalf = 0.1, double copyGuest = 0.29, double keepPt = 16384)
    {
        var metrics = new List<MetricSpec>
        {
            new("vm_crashes", "VM crashes", "per 1,000 VM-years", Fmt.Num, Fleet: true),
            new("live_migrations", "live migrations", "per server", Fmt.Num, Fleet: true),
            new("guest_memory_lost", "guest memory lost", "GiB per server", Fmt.Num, Fleet: true),
            new("sc_page_tables", "page-table memory at peak", "", Fmt.Bytes, Fleet: false),
        };
        var f = new PolicyFigures(Policies, metrics);
        void Fleet(string p, string m, double mean, double half, double baseMean)
        {
            f.Values[(p, m)] = new(mean, mean * 0.9, mean * 1.1);
            if (p != "mainline") f.Deltas[(p, m)] = new(mean - baseMean, mean - baseMean - half, mean - baseMean + half);
        }
        foreach (var (p, crashes, mig, guest) in new[] { ("mainline", 3.8, 0.45, 0.19), ("hgm", hgmCrashes, 0.53, 0.17), ("keep-mapped", hgmCrashes, 0.53, 0.17), ("copy-around", 2.7, 0.49, copyGuest) })
        {
            Fleet(p, "vm_crashes", crashes, p == "copy-around" ? 0.09 : hgmDeltaHalf, 3.8);
            Fleet(p, "live_migrations", mig, 0.006, 0.45);
            Fleet(p, "guest_memory_lost", guest, 0.03, 0.19);
        }
        foreach (var (p, pt) in new[] { ("mainline", 16384.0), ("hgm", 32768.0), ("keep-mapped", keepPt), ("copy-around", 32768.0) })
            f.Values[(p, "sc_page_tables")] = Estimate.Exact(pt);
        return f;
    }

    [Fact]
    public void The_headline_names_the_best_group_with_its_figure_and_the_delta_interval()
    {
        var v = Verdict.Build(Fleet());
        var head = v.Headline[0];
        Assert.StartsWith("Fewest VM crashes: hgm and keep-mapped, 1.60 [1.44, 1.76] per 1,000 VM-years against mainline's 3.8 [3.4, 4.2] per 1,000 VM-years", head);
        Assert.Contains("Δ −2.20 [−2.30, −2.10]", head);
        Assert.Contains("statistically indistinguishable", head);
    }

    [Fact]
    public void When_the_delta_interval_includes_zero_no_policy_is_claimed_better()
    {
        var v = Verdict.Build(Fleet(hgmCrashes: 3.75, hgmDeltaHalf: 0.2));
        Assert.DoesNotContain(v.All, s => s.StartsWith("Fewest VM crashes: hgm", StringComparison.Ordinal));
        Assert.StartsWith("Fewest VM crashes: copy-around", v.Headline[0]);
        Assert.Contains(v.Trades, t => t.Policies.Contains("hgm") && !t.Better.Any(b => b.StartsWith("VM crashes", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_surprise_appears_only_while_the_figures_show_it_and_names_its_cause()
    {
        var with = Verdict.Build(Fleet());
        Assert.Contains(with.Surprises, s => s.StartsWith("copy-around loses more guest memory than mainline", StringComparison.Ordinal) && s.Contains("fewer VM crashes"));
        Assert.Contains(with.Surprises, s => s.Contains("live-migrate") && s.Contains("more damaged VMs survive"));
        var without = Verdict.Build(Fleet(copyGuest: 0.19));
        Assert.DoesNotContain(without.Surprises, s => s.Contains("loses more guest memory"));
    }

    [Fact]
    public void Dominance_follows_the_numbers()
    {
        // keep-mapped with mainline's page tables dominates hgm (same fleet figures, cheaper page tables)
        var a = Verdict.Build(Fleet(keepPt: 16384));
        Assert.Contains(a.Headline, s => s.Contains("hgm is dominated by keep-mapped"));
        // with more page tables than hgm it no longer does, and hgm dominates it instead
        var b = Verdict.Build(Fleet(keepPt: 65536));
        Assert.DoesNotContain(b.Headline, s => s.Contains("hgm is dominated by keep-mapped"));
        Assert.Contains(b.Headline, s => s.Contains("keep-mapped is dominated by hgm"));
    }

    [Fact]
    public void Policies_with_the_same_figures_share_one_sentence_and_one_row()
    {
        // hgm and keep-mapped: same fleet figures, and (keepPt 32 KiB) the same page tables: one row, named together
        var same = Verdict.Build(Fleet(keepPt: 32768));
        var row = Assert.Single(same.Trades, t => t.Policies.Contains("hgm"));
        Assert.Equal(["hgm", "keep-mapped"], row.Policies);
        Assert.Contains("page-table memory at peak 32 KiB vs 16 KiB", row.Worse);
        // their common live-migration Δ is quoted once in the whole headline, for both
        Assert.Single(same.Headline, s => s.Contains("+0.080 [0.074, 0.086]"));
        Assert.Contains(same.Surprises, s => s.Contains("live-migrates more VMs: hgm and keep-mapped by the Δ above and copy-around by Δ +0.040 [0.034, 0.046] per server;"));
        // cheaper page tables for keep-mapped: two rows, and the headline says who pays less
        var apart = Verdict.Build(Fleet(keepPt: 16384));
        Assert.Equal(2, apart.Trades.Count(t => t.Policies.Contains("hgm") || t.Policies.Contains("keep-mapped")));
        Assert.Contains(apart.Headline, s => s.StartsWith("What they pay against mainline: live migrations Δ +0.080 [0.074, 0.086] per server (both); page-table memory at peak 32 KiB (hgm) against 16 KiB.", StringComparison.Ordinal)
                                             && s.EndsWith("keep-mapped pays only in live migrations.", StringComparison.Ordinal));
    }

    [Fact]
    public void The_verdict_is_short()
    {
        var v = Verdict.Build(Small.Compare.Figures(), Summary.Facts(Small.Compare.Fleet), "sensitivity sentence");
        Assert.InRange(v.Headline.Count, 3, 8);
        Assert.True(v.Headline.Sum(s => s.Length) < 4000, $"{v.Headline.Sum(s => s.Length)} characters");
        // every policy with a trade-off is in exactly one row of the details; one with the baseline's figures (hgm-v2,
        // which poisons the whole folio) is grouped with the baseline and has none
        var rows = v.Trades.SelectMany(t => t.Policies).ToList();
        Assert.Equal(rows.Distinct().Count(), rows.Count);
        var f = Small.Compare.Figures();
        var costs = f.Metrics.Where(m => m.Cost).ToList();
        bool AsBaseline(string p) => costs.All(m => f.Has(p, m.Key) == f.Has("mainline", m.Key) && (!f.Has(p, m.Key) || f.Compare(m.Key, p, "mainline") == 0));
        Assert.Equal(Small.Compare.Policies.Where(p => p != "mainline" && !AsBaseline(p)).Order(), rows.Order());
    }

    [Fact]
    public void A_policy_without_fleet_figures_is_named_and_the_fleet_headline_stays()
    {
        // a policy the fleet does not model (as hgm-v2 until the fleet learns it): scenario figures only
        var f0 = Fleet();
        var f = new PolicyFigures([.. Policies, "new-design"], f0.Metrics);
        foreach (var kv in f0.Values) f.Values[kv.Key] = kv.Value;
        foreach (var kv in f0.Deltas) f.Deltas[kv.Key] = kv.Value;
        f.Values[("new-design", "sc_page_tables")] = Estimate.Exact(8192);
        f.Missing["new-design"] = "no fleet figures (the fleet does not model it yet)";
        var v = Verdict.Build(f);
        Assert.StartsWith("Fewest VM crashes: hgm and keep-mapped", v.Headline[0]);
        Assert.Contains(v.Headline, s => s.StartsWith("new-design: no fleet figures (the fleet does not model it yet)", StringComparison.Ordinal));
        // it is not claimed to dominate or be dominated on costs it has no figure for
        Assert.DoesNotContain(v.Headline, s => s.Contains("dominated by new-design") || s.Contains("new-design is dominated"));
        Assert.Contains(v.ByMetric, s => s.StartsWith("Page-table memory at peak: new-design 8 KiB <", StringComparison.Ordinal));
    }

    [Fact]
    public void Differences_of_exact_scenario_figures_have_no_interval_and_binary_units()
    {
        // no fleet: the headline rests on an exact scenario metric
        var metrics = new List<MetricSpec> { new("sc_guest_lost", "guest memory lost per error", "", Fmt.Bytes, Fleet: false, Amount: true) };
        var f = new PolicyFigures(["mainline", "hgm"], metrics);
        f.Values[("mainline", "sc_guest_lost")] = Estimate.Exact(1L << 30);
        f.Values[("hgm", "sc_guest_lost")] = Estimate.Exact(4096);
        var head = Verdict.Build(f).Headline[0];
        Assert.Equal("Least guest memory lost per error: hgm, 4 KiB against mainline's 1 GiB (Δ −1.00 GiB, −100 %).", head);
    }

    [Fact]
    public void A_subset_of_policies_gets_a_verdict_about_that_subset_only()
    {
        var r = Small.Compare;
        string[] subset = ["mainline", "keep-mapped"];
        var f = Summary.Figures(r.Scenarios, subset, r.Rows.Where(x => subset.Contains(x.Policy)).ToList(), r.Fleet);
        var v = Verdict.Build(f, Summary.Facts(r.Fleet));
        Assert.StartsWith("Fewest VM crashes: keep-mapped", v.Headline[0]);
        foreach (var other in r.Policies.Except(subset)) Assert.DoesNotContain(v.All, s => s.Contains(other + " ") || s.Contains(other + ","));
    }

    [Fact]
    public void The_verdict_of_a_real_comparison_quotes_figures_that_are_in_the_summary_table()
    {
        var r = Small.Compare;
        var f = r.Figures();
        var table = Summary.Table(f);
        var cells = table.Rows.SelectMany(row => row.SelectMany(c => c.Lines)).ToHashSet();
        var v = Verdict.Build(f, Summary.Facts(r.Fleet));
        Assert.NotEmpty(v.Headline);
        // every interval a verdict sentence quotes is a cell of the table
        foreach (var s in v.All)
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(s, @"(Δ )?[−+]?[\d.,]+ \[[−\d.,]+, [−\d.,]+\]"))
                Assert.True(cells.Any(c => c.Contains(m.Value)), $"'{m.Value}' of \"{s}\" is in no table cell");
        // numbers go through Fmt: no run of five digits without a thousands separator (raw bytes), no interval of an exact figure
        Assert.DoesNotContain(v.All, s => System.Text.RegularExpressions.Regex.IsMatch(s, @"\d{5}"));
        Assert.DoesNotContain(v.All, s => System.Text.RegularExpressions.Regex.IsMatch(s, @"Δ [−+]?([\d.,]+) \[[−+]?\1, [−+]?\1\]"));
        // a policy the fleet does not model is said so, and the headline still rests on the fleet
        Assert.StartsWith("Fewest VM crashes", v.Headline[0]);
        foreach (var p in r.Policies.Where(p => !HugeFault.Fleet.FleetPolicies.TryParse(p, out _)))
            Assert.Contains(v.Headline, s => s.StartsWith($"{p}: no fleet figures (the fleet does not model it yet)", StringComparison.Ordinal));
    }
}

using HugeFault.Fleet;
using HugeFault.Mm;
using HugeFault.Scenarios;

namespace HugeFault.Reports.Tests;

public class ScenarioTableTests
{
    [Fact]
    public void Expectations_are_judged_only_for_the_policy_the_scenario_was_written_for()
    {
        var r = Small.Compare;
        var sc = r.Scenarios[0];
        var t = ScenarioTables.Build(sc, r.Rows.Where(x => x.Scenario == sc.Name).ToList());
        int col = t.Columns.FindIndex(c => c.Header.StartsWith("expectations", StringComparison.Ordinal));
        Assert.True(col > 0);
        foreach (var row in t.Rows)
        {
            string cell = row[col].ToString();
            if (row[0].ToString() == sc.Host.Policy) Assert.Equal("hold", cell);
            else Assert.Equal("–", cell);
        }
    }

    [Fact]
    public void Columns_equal_under_every_policy_move_to_a_note()
    {
        var r = Small.Compare;
        var sc = r.Scenarios[0];
        var rows = r.Rows.Where(x => x.Scenario == sc.Name).ToList();
        var t = ScenarioTables.Build(sc, rows);
        Assert.DoesNotContain(t.Columns, c => c.Header == "killed"); // nobody is killed in this scenario
        Assert.Contains(t.Notes, n => n.Contains("killed 0"));
        Assert.Contains(t.Columns, c => c.Header == "inaccessible");
    }
}

public class PageTableSnapshotTests
{
    private static PageTableSnapshot Snap(string policy) => Small.Compare.Snapshots[(Small.Compare.Scenarios[0].Name, policy)];

    [Fact]
    public void Mainline_leaves_a_whole_gigabyte_hwpoison_entry_and_hgm_a_4k_one_in_a_few_runs()
    {
        var mainline = Snap("mainline").Mms.SelectMany(m => m.Vmas).SelectMany(v => v.Runs).ToList();
        Assert.True(mainline.Any(x => x.Kind == LeafKind.Hwpoison && x.Level == PtLevel.Pud && x.End - x.Start == Units.PUD_SIZE),
            string.Join("; ", mainline.Select(x => $"{x.Level} {x.Kind} {x.Start:x}-{x.End:x}")));
        var hgm = Snap("hgm").Mms.SelectMany(m => m.Vmas).Where(v => v.Hugetlb).ToList();
        Assert.All(hgm, v => Assert.True(v.Runs.Count <= 8, $"{v.Runs.Count} runs"));
        Assert.True(hgm.SelectMany(v => v.Runs).Any(x => x.Kind == LeafKind.Hwpoison && x.Level == PtLevel.Pte && x.Entries == 1),
            string.Join("; ", hgm.SelectMany(v => v.Runs).Select(x => $"{x.Level} {x.Kind} {x.Entries}")));
        var full = Snap("hgm-full-split").Mms.SelectMany(m => m.Vmas).SelectMany(v => v.Runs).ToList();
        Assert.True(full.Count <= 8, $"a fully split 1 GiB mapping is a few runs, got {full.Count}");
        Assert.True(full.Where(x => x.Level == PtLevel.Pte && x.Kind == LeafKind.Present).Sum(x => (double)x.Entries) > 200_000,
            string.Join("; ", full.Select(x => $"{x.Level} {x.Kind} {x.Entries}")));
    }

    [Fact]
    public void Pictures_show_the_page_tables_just_after_the_error_not_the_final_state()
    {
        // VM v consumes the error in a guest access after the hw_error step; vm_reset (QEMU 10) then discards the
        // poisoned gigabyte and maps a fresh one, so at the end v's page tables show no error any more
        var sc = BuiltinScenarios.Load("vm/vm-reset-after-error.yaml");
        var (_, snaps) = CompareRunner.RunScenarios([sc], ["mainline"], snapshots: true, threads: 1);
        static MmSnapshot V(PageTableSnapshot s) => s.Mms.Single(m => m.Tasks.Split(',').Contains("v"));
        static bool Hwpoison(MmSnapshot m) => m.Vmas.SelectMany(v => v.Runs).Any(r => r.Kind == LeafKind.Hwpoison && r.Level == PtLevel.Pud);
        Assert.True(Hwpoison(V(snaps[(sc.Name, "mainline")])), "the picture misses the 1 GiB hwpoison entry the guest access left");
        Assert.False(Hwpoison(V(PageTableSnapshot.Take(ScenarioRunner.Run(sc, "mainline").Kernel))), "at the end of the scenario v has a fresh gigabyte");
    }

    [Fact]
    public void The_picture_counts_the_leaves()
    {
        var v = Snap("hgm").Mms.SelectMany(m => m.Vmas).First(v => v.Hugetlb);
        Assert.Equal("511 × 2 MiB, 511 × 4 KiB, 1 × 4 KiB hwpoison", Html.PageTablePicture.Count(v));
    }
}

public class SensitivityTests
{
    [Fact]
    public void Every_parameter_is_a_fleet_config_key_and_its_range_holds_the_default()
    {
        var known = FleetConfigLoader.KnownKeys.ToHashSet();
        var d = new FleetConfig();
        foreach (var p in Sensitivity.Parameters)
        {
            Assert.Contains(p.Key, known);
            Assert.InRange(p.Read(d), p.Low, p.High);
            Assert.Equal(p.Low, p.Read(p.Apply(d, p.Low)));
            Assert.Equal(p.High, p.Read(p.Apply(d, p.High)));
            Assert.Empty(p.Apply(d, p.High).Validate());
            // the YAML key sets the same field the table's setter does
            var (fromYaml, errors) = FleetConfigLoader.Load(YamlFor(p.Key, p.High), "t.yaml");
            Assert.Empty(errors);
            Assert.Equal(p.High, p.Read(fromYaml!));
        }
    }

    private static string YamlFor(string key, double v)
    {
        var parts = key.Split('.');
        return $"{parts[0]}:\n  {parts[1]}: {v.ToString(System.Globalization.CultureInfo.InvariantCulture)}\n";
    }

    [Fact]
    public void The_report_lists_every_parameter_with_its_source()
    {
        var r = Small.Compare;
        var doc = SensitivityReport.Build(r.Sensitivity!, r.Figures());
        var t = doc.Blocks.OfType<TableBlock>().Single().Table;
        Assert.Equal(Sensitivity.Parameters.Count, t.Rows.Count);
        Assert.All(t.Rows, row => Assert.False(string.IsNullOrWhiteSpace(row[^1].ToString())));
        Assert.Equal(2 * Sensitivity.Parameters.Count, r.Sensitivity!.Runs.Count);
    }

    [Fact]
    public void A_table_wider_than_the_page_is_split_into_parts_that_each_repeat_the_policy_column()
    {
        var cols = new List<TextColumn> { new("policy", Right: false) };
        for (int i = 0; i < 30; i++) cols.Add(new TextColumn($"metric {i}"));
        var t = new TextTable("wide", cols);
        foreach (var p in new[] { "mainline", "hgm" })
            t.Row([p, .. Enumerable.Range(0, 30).Select(i => (TextCell)$"{i}.000 [{i}.000, {i}.000]")]);
        var doc = new ReportDoc();
        doc.Table(t);
        string html = Html.HtmlReport.Render(doc, "t");
        int parts = System.Text.RegularExpressions.Regex.Matches(html, "<table>").Count;
        Assert.True(parts >= 2, html);
        Assert.Contains($"wide (1 of {parts})", html);
        // every part names the rows; every metric appears exactly once
        Assert.Equal(parts, System.Text.RegularExpressions.Regex.Matches(html, "<td class=\"k\">hgm</td>").Count);
        for (int i = 0; i < 30; i++) Assert.Single(System.Text.RegularExpressions.Regex.Matches(html, $"<th>metric {i}</th>"));

        var narrow = new TextTable("narrow", cols.Take(4));
        narrow.Row("mainline", "1", "2", "3");
        var d2 = new ReportDoc();
        d2.Table(narrow);
        Assert.DoesNotContain("(1 of", Html.HtmlReport.Render(d2, "t"));
    }

    [Fact]
    public void The_summary_marks_extrapolated_designs_and_says_where_each_comes_from()
    {
        var t = Summary.Table(Small.Compare.Figures());
        var names = t.Rows.Select(r => r[0].Lines[0]).ToList();
        foreach (var p in Small.Compare.Policies)
        {
            bool extrapolated = HugeFault.Policies.RecoveryPolicies.Provenance(p).StartsWith("extrapolation", StringComparison.Ordinal);
            Assert.Contains(extrapolated ? p + " *" : p, names);
        }
        if (Small.Compare.Policies.Contains("hgm")) Assert.Contains(t.Notes, n => n.StartsWith("* extrapolation") && n.Contains("hgm: HGM as intended"));
    }
}

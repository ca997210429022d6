using HugeFault.Fleet;
using HugeFault.Simulation;

namespace HugeFault.Reports;

/// <summary>The fleet result as report blocks: what was run, the fleet-level rates, and one row per policy.</summary>
public static class FleetSection
{
    /// <summary>Metrics shown in the table (all are in the JSON and CSV).</summary>
    public static readonly string[] TableMetrics =
        ["vm_crashes", "host_panics", "stranded_gib_days", "stranded_gib_end", "guest_memory_lost_gib", "good_data_lost_gib", "extra_memory_peak_gib",
         "page_table_peak_kib", "hugepages_lost", "live_migrations", "ue_events", "fallbacks"];

    /// <summary>The report of a run: its identity (seed, servers, configuration summary) and tallies.</summary>
    public static FleetReport Report(FleetResult r)
    {
        var c = r.Config;
        var s = c.Server;
        string summary = FormattableString.Invariant(
            $"{s.Sockets}S×{s.ChannelsPerSocket}ch×{s.DimmsPerChannel}DPC×{s.RanksPerDimm}R x{s.ChipWidth} {s.MemoryBytes >> 30} GiB, {s.Ecc.ToString().ToLowerInvariant()} weak={s.WeakenedEcc}, ") +
            FormattableString.Invariant($"{c.Faults.Profile}×{c.Faults.FitScale} {c.Faults.Heterogeneity.ToString().ToLowerInvariant()}({c.Faults.HeterogeneityParameter}), pool {r.Model.PoolFrames} GiB");
        bool whole = r.EndServer - r.FirstServer == c.Servers;
        var ctx = new FleetContext(c.Seed, c.Servers, c.Years, r.Model.MeanConcurrentVms,
            whole ? "all" : $"{r.Shard.Index}/{r.Shard.Count}", summary, r.Model.ZeroProbabilityPerServer);
        return new FleetReport(ctx, r.Tally);
    }

    /// <summary>A short identity of the configuration (for captions): 8 hex digits of a stable hash.</summary>
    public static string ConfigHash(FleetContext c)
    {
        ulong h = 14695981039346656037UL; // FNV-1a over the config summary, years and VM density
        foreach (char ch in $"{c.ConfigSummary}|{c.Years}|{c.MeanConcurrentVms}") { h ^= ch; h *= 1099511628211UL; }
        return (h & 0xffffffff).ToString("x8");
    }

    /// <summary>"1,000 servers × 1 year, seed 1, config 1a2b3c4d": the run metadata every caption carries.</summary>
    public static string Metadata(FleetReport r) =>
        $"{Fmt.Count(r.Tally.Servers)} servers × {Fmt.Num(r.Context.Years)} year{(r.Context.Years == 1 ? "" : "s")}, seed {r.Context.Seed}, config {ConfigHash(r.Context)}";

    public static ReportDoc Build(FleetReport r, string title, IReadOnlyList<Chart>? charts = null)
    {
        var doc = new ReportDoc().Heading(title, 2, "fleet");
        var t = r.Tally;
        var ue = r.ServersWithUe;
        doc.Para($"{Metadata(r)} ({r.Context.ConfigSummary}); {Fmt.Count((long)Math.Round(t.Servers * r.VmYearsPerServer))} VM-years. " +
                 $"Servers with at least one UE (fault-level): {Fmt.Percent(ue.Mean)} {Fmt.Bounds(ue.Mean * 100, ue.Lower * 100, ue.Upper * 100)} %; " +
                 $"faults per server {Fmt.Num(r.ServerRate(ServerMetric.Faults).Mean)}; DIMM replacements per server {Fmt.Num(r.ServerRate(ServerMetric.DimmReplacements).Mean)}.");
        doc.Table(Table(r));
        doc.Para(Intervals.Method);
        foreach (var c in charts ?? []) doc.Figure(c.Svg, c.Caption);
        return doc;
    }

    public static TextTable Table(FleetReport r)
    {
        var rows = r.Rows().ToList();
        var metrics = FleetReport.Metrics.Where(m => TableMetrics.Contains(m.Name)).OrderBy(m => Array.IndexOf(TableMetrics, m.Name)).ToList();
        var cols = new List<TextColumn> { new("policy", Right: false) };
        cols.AddRange(metrics.Select(m => new TextColumn($"{m.Label} ({m.Unit})")));
        var table = new TextTable(null, cols);
        foreach (var p in r.Tally.Policies)
        {
            var cells = new List<TextCell> { p };
            foreach (var m in metrics)
            {
                var x = rows.First(z => z.Policy == p && z.Metric == m.Name);
                string v = Fmt.Interval(x.Value.Mean, x.Value.Lower, x.Value.Upper);
                cells.Add(x.DiffVsMainline is { } d ? TextCell.Of(v, Fmt.Delta(d.Mean, d.Lower, d.Upper)) : TextCell.Of(v));
            }
            table.Row(cells.ToArray());
        }
        table.Notes.Add("Each cell: mean [95 % CI]; under it Δ = paired difference vs mainline [95 % CI].");
        return table;
    }
}

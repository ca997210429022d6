using System.Globalization;
using HugeFault.Fleet;
using Parquet;
using Parquet.Schema;
using Spectre.Console;

namespace HugeFault.Cli.Render;

/// <summary>Renders fleet results: Spectre table, CSV, ScottPlot PNG/SVG and Parquet rows. Nothing here changes a number.</summary>
internal static class FleetRender
{
    private static readonly string[] TableMetrics =
        ["stranded_gib_days", "stranded_gib_end", "ue_events", "vm_crashes", "guest_memory_lost_gib", "good_data_lost_gib",
         "extra_memory_peak_gib", "page_table_peak_kib", "hugepages_lost", "live_migrations"];

    public static FleetReport Report(FleetResult r)
    {
        var c = r.Config;
        var s = c.Server;
        string summary = string.Create(CultureInfo.InvariantCulture,
            $"{s.Sockets}S×{s.ChannelsPerSocket}ch×{s.DimmsPerChannel}DPC×{s.RanksPerDimm}R x{s.ChipWidth} {s.MemoryBytes >> 30} GiB, {s.Ecc.ToString().ToLowerInvariant()} weak={s.WeakenedEcc}, " +
            $"{c.Faults.Profile}×{c.Faults.FitScale} {c.Faults.Heterogeneity.ToString().ToLowerInvariant()}({c.Faults.HeterogeneityParameter}), pool {r.Model.PoolFrames} GiB");
        bool whole = r.EndServer - r.FirstServer == c.Servers;
        var ctx = new FleetContext(c.Seed, c.Servers, c.Years, r.Model.MeanConcurrentVms,
            whole ? "all" : $"{r.Shard.Index}/{r.Shard.Count}", summary, r.Model.ZeroProbabilityPerServer);
        return new FleetReport(ctx, r.Tally);
    }

    public static void WriteTable(FleetReport report, TextWriter output)
    {
        var console = Out.Create(output, ansi: false);
        console.Profile.Width = 160;
        var t = report.Tally;
        var ue = report.ServersWithUe;
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"hugefault fleet: {t.Servers:N0} servers × {report.Context.Years:0.###} y (seed {report.Context.Seed}, shard {report.Context.Shard}); {report.Context.ConfigSummary}"));
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"servers with ≥1 UE (fault-level): {ue.Mean:P3} [{ue.Lower:P3}, {ue.Upper:P3}]; faults/server {t.ServerMean(ServerMetric.Faults).Mean:0.###}; " +
            $"DIMM replacements/server {t.ServerMean(ServerMetric.DimmReplacements).Mean:0.#####}; VM-years {t.Servers * report.VmYearsPerServer:N0}"));
        var table = new Table().AddColumn("Metric").AddColumn("Unit");
        foreach (var p in t.Policies) table.AddColumn(new TableColumn(Markup.Escape(p)).RightAligned());
        var rows = report.Rows().ToList();
        foreach (var m in TableMetrics)
        {
            var cells = new List<string> { m, Markup.Escape(rows.First(r => r.Metric == m).Unit) };
            foreach (var p in t.Policies)
            {
                var r = rows.First(x => x.Policy == p && x.Metric == m);
                string cell = $"{Num(r.Value.Mean)} ±{Num(r.Value.Upper - r.Value.Mean)}";
                if (r.DiffVsMainline is { } d) cell += $"\nΔ {Num(d.Mean)} [{Num(d.Lower)}, {Num(d.Upper)}]";
                cells.Add(Markup.Escape(cell));
            }
            table.AddRow(cells.ToArray());
        }
        console.Write(table);
        console.WriteLine("± is the 95% CI half-width; Δ is the paired difference vs mainline (same servers, same errors) with its 95% CI.");
    }

    public static void WriteCsv(FleetReport report, TextWriter output)
    {
        output.WriteLine("policy,metric,unit,mean,ci_lo,ci_hi,total,diff_vs_mainline,diff_lo,diff_hi");
        foreach (var r in report.Rows())
        {
            string d = r.DiffVsMainline is { } x ? $"{R(x.Mean)},{R(x.Lower)},{R(x.Upper)}" : ",,";
            output.WriteLine($"{r.Policy},{r.Metric},\"{r.Unit}\",{R(r.Value.Mean)},{R(r.Value.Lower)},{R(r.Value.Upper)},{R(r.Total)},{d}");
        }
    }

    private static string R(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    private static string Num(double x)
    {
        double a = Math.Abs(x);
        if (a == 0) return "0";
        if (a >= 1000) return x.ToString("N0", CultureInfo.InvariantCulture);
        if (a >= 0.01) return x.ToString("0.###", CultureInfo.InvariantCulture);
        return x.ToString("0.##E+0", CultureInfo.InvariantCulture);
    }

    /// <summary>Stranded capacity over time per policy, VM crashes per policy with CIs, UE footprint by fault mode.</summary>
    public static void WritePlots(FleetReport report, string dir)
    {
        Directory.CreateDirectory(dir);
        ScottPlot.Fonts.Default = "DejaVu Sans";
        var t = report.Tally;
        {
            var plt = new ScottPlot.Plot();
            double[] xs = Enumerable.Range(1, t.Bins).Select(b => b * report.Context.Years * 12 / t.Bins).ToArray();
            for (int p = 0; p < t.Policies.Length; p++)
            {
                int pi = p;
                double[] ys = Enumerable.Range(0, t.Bins).Select(b => report.SeriesMeanGiB(pi, b) * 1000).ToArray();
                var sc = plt.Add.Scatter(xs, ys);
                sc.LegendText = t.Policies[p];
            }
            plt.Title("Capacity stranded over time");
            plt.XLabel("month");
            plt.YLabel("mean GiB stranded per 1,000 servers");
            plt.ShowLegend();
            Save(plt, dir, "stranded-over-time");
        }
        {
            var plt = new ScottPlot.Plot();
            var rows = report.Rows().Where(r => r.Metric == "vm_crashes").ToList();
            for (int i = 0; i < rows.Count; i++)
            {
                var bar = plt.Add.Bar(position: i, value: rows[i].Value.Mean, error: rows[i].Value.Upper - rows[i].Value.Mean);
                _ = bar;
            }
            plt.Axes.Bottom.SetTicks(Enumerable.Range(0, rows.Count).Select(i => (double)i).ToArray(), rows.Select(r => r.Policy).ToArray());
            TiltLabels(plt);
            plt.Title("VM crashes per 1,000 VM-years (95% CI)");
            plt.Axes.Margins(bottom: 0);
            Save(plt, dir, "vm-crashes");
        }
        {
            var plt = new ScottPlot.Plot();
            int modes = ServerOutcome.Modes;
            for (int i = 0; i < modes; i++)
                plt.Add.Bar(position: i, value: t.ModePatterns[i] == 0 ? 0 : (double)t.ModeFrames[i] / t.ModePatterns[i]);
            plt.Axes.Bottom.SetTicks(Enumerable.Range(0, modes).Select(i => (double)i).ToArray(), Enumerable.Range(0, modes).Select(FleetReport.ModeName).ToArray());
            TiltLabels(plt);
            plt.Title("UE footprint by fault mode: 1 GiB frames per UE pattern");
            plt.Axes.Margins(bottom: 0);
            Save(plt, dir, "ue-footprint-by-mode");
        }
    }

    private static void TiltLabels(ScottPlot.Plot plt)
    {
        plt.Axes.Bottom.TickLabelStyle.Rotation = 30;
        plt.Axes.Bottom.TickLabelStyle.Alignment = ScottPlot.Alignment.MiddleLeft;
        plt.Axes.Bottom.MinimumSize = 110;
    }

    private static void Save(ScottPlot.Plot plt, string dir, string name)
    {
        plt.SavePng(Path.Combine(dir, name + ".png"), 900, 560);
        plt.SaveSvg(Path.Combine(dir, name + ".svg"), 900, 560);
    }

    /// <summary>One row per server with an uncorrectable pattern (others are all zero), columns per policy.</summary>
    public static void WriteParquet(FleetResult r, string path) => WriteParquetAsync(r, path).GetAwaiter().GetResult();

    private static async Task WriteParquetAsync(FleetResult r, string path)
    {
        var rows = r.Rows.OrderBy(x => x.Server).ToList();
        var fields = new List<DataField>
        {
            new DataField<long>("server"), new DataField<long>("faults"), new DataField<long>("ue_patterns"), new DataField<long>("dimm_replacements"),
        };
        var policies = r.Config.Policies;
        string[] metrics = ["stranded_page_hours", "stranded_pages_end", "ue_events", "vms_killed", "guest_lost_bytes"];
        foreach (var p in policies)
            foreach (var m in metrics) fields.Add(new DataField<long>($"{p}.{m}"));
        var schema = new ParquetSchema(fields.ToArray<Field>());
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, stream);
        using var rg = writer.CreateRowGroup();
        var columns = new List<Func<FleetServerRow, long>> { x => x.Server, x => x.Faults, x => x.UePatterns, x => x.DimmReplacements };
        for (int p = 0; p < policies.Count; p++)
        {
            int pi = p;
            columns.Add(x => x.StrandedPageHours[pi]);
            columns.Add(x => x.StrandedPagesEnd[pi]);
            columns.Add(x => x.UeEvents[pi]);
            columns.Add(x => x.VmsKilled[pi]);
            columns.Add(x => x.GuestLostBytes[pi]);
        }
        for (int i = 0; i < columns.Count; i++)
            await rg.WriteAsync<long>(fields[i], rows.Select(columns[i]).ToArray().AsMemory());
    }
}

/// <summary>Progress: a Spectre bar with ETA when stderr is a terminal, plain lines every 10 % otherwise.</summary>
internal static class FleetProgress
{
    public static FleetResult Run(TextWriter stderr, long total, Func<Action<long>, FleetResult> run)
    {
        bool terminal = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        if (terminal)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            FleetResult? result = null;
            console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("servers", maxValue: Math.Max(1, total));
                    result = run(done => task.Value = done);
                    task.Value = task.MaxValue;
                });
            return result!;
        }
        long nextReport = Math.Max(1, total / 10);
        object gate = new();
        return run(done =>
        {
            lock (gate)
            {
                if (done < nextReport && done < total) return;
                stderr.WriteLine(string.Create(CultureInfo.InvariantCulture, $"hugefault fleet: {done:N0}/{total:N0} servers ({100.0 * done / Math.Max(1, total):0}%)"));
                while (nextReport <= done) nextReport += Math.Max(1, total / 10);
            }
        });
    }
}

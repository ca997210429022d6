using System.Globalization;
using HugeFault.Fleet;
using Parquet;
using Parquet.Schema;
using HugeFault.Reports;
using Spectre.Console;

namespace HugeFault.Cli.Render;

/// <summary>Renders fleet results: Spectre table, CSV, ScottPlot PNG/SVG and Parquet rows. Nothing here changes a number.</summary>
internal static class FleetRender
{
    public static FleetReport Report(FleetResult r) => FleetSection.Report(r);

    public static void WriteTable(FleetReport report, TextWriter output, bool wide = false) =>
        Terminal.Write(FleetSection.Build(report, "hugefault fleet"), output, TerminalOptions.Detect(output, wide));

    public static void WriteCsv(FleetReport report, TextWriter output)
    {
        output.WriteLine("policy,metric,unit,mean,ci_lo,ci_hi,total,diff_vs_mainline,diff_lo,diff_hi");
        foreach (var r in report.Rows())
        {
            string d = r.DiffVsMainline is { } x ? $"{Fmt.Raw(x.Mean)},{Fmt.Raw(x.Lower)},{Fmt.Raw(x.Upper)}" : ",,";
            output.WriteLine($"{r.Policy},{r.Metric},\"{r.Unit}\",{Fmt.Raw(r.Value.Mean)},{Fmt.Raw(r.Value.Lower)},{Fmt.Raw(r.Value.Upper)},{Fmt.Raw(r.Total)},{d}");
        }
    }

    /// <summary>Every fleet chart as PNG and SVG in <paramref name="dir"/> (written atomically).</summary>
    public static void WritePlots(FleetReport report, FleetBands? bands, string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var c in Plots.Fleet(report, bands))
        {
            Commands.OutputFiles.Write(Path.Combine(dir, c.Name + ".png"), s => s.Write(c.Png));
            Commands.OutputFiles.WriteText(Path.Combine(dir, c.Name + ".svg"), c.Svg);
        }
    }

    /// <summary>One row per server with an uncorrectable pattern (others are all zero), columns per policy.</summary>
    public static void WriteParquet(FleetResult r, string path) => Commands.OutputFiles.Write(path, s => WriteParquetAsync(r, s).GetAwaiter().GetResult());

    private static async Task WriteParquetAsync(FleetResult r, Stream stream)
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
    public static T Run<T>(TextWriter stderr, long total, Func<Action<long>, T> run, bool linesWhenNotTerminal = true)
    {
        bool terminal = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        if (terminal)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            T? result = default;
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
        if (!linesWhenNotTerminal) return run(_ => { });
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

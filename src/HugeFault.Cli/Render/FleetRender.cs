using System.Globalization;
using HugeFault.Fleet;
using HugeFault.Cli.Commands;
using HugeFault.Fleet.Output;
using HugeFault.Reports.Output;
using HugeFault.Reports;
using Spectre.Console;

namespace HugeFault.Cli.Render;

/// <summary>Renders fleet results: Spectre table, CSV, ScottPlot PNG/SVG and Parquet rows. Nothing here changes a number.</summary>
internal static class FleetRender
{
    public static FleetReport Report(FleetResult r) => FleetSection.Report(r);

    /// <summary>The table, headed by the shard it covers; a partial merge says so first.</summary>
    public static void WriteTable(FleetReport report, StudyStamp stamp, TextWriter output, bool wide = false, bool plain = false)
    {
        if (stamp.Partial && stamp.Shards.Count > 1)
            output.WriteLine($"PARTIAL: {stamp.Label}; these figures cover {report.Tally.Servers:N0} of the study's {report.Context.ServersTotal:N0} servers.");
        // The study id (it includes the tool version) goes to stderr and the JSON, not into the table, whose whole-study
        // form the README quotes.
        var doc = FleetSection.Build(report, stamp.Complete ? "hugefault fleet" : $"hugefault fleet (shard {(stamp.Shards.Count == 1 ? stamp.Label : "partial")})");
        Terminal.Write(doc, output, plain ? new TerminalOptions(TerminalOptions.PipeWidth, true, false) : TerminalOptions.Detect(output, wide));
    }

    /// <summary>The report as CSV; every row ends with the study id and the shard label ("all", "2/4", or "partial: …" for a partial merge).</summary>
    public static void WriteCsv(FleetReport report, StudyStamp stamp, TextWriter output)
    {
        output.WriteLine("policy,metric,unit,mean,ci_lo,ci_hi,total,diff_vs_mainline,diff_lo,diff_hi,study,shard");
        string tail = $",{stamp.Study.Id},\"{stamp.Label}\"";
        foreach (var r in report.Rows())
        {
            string d = r.DiffVsMainline is { } x ? $"{Fmt.Raw(x.Mean)},{Fmt.Raw(x.Lower)},{Fmt.Raw(x.Upper)}" : ",,";
            output.WriteLine($"{r.Policy},{r.Metric},\"{r.Unit}\",{Fmt.Raw(r.Value.Mean)},{Fmt.Raw(r.Value.Lower)},{Fmt.Raw(r.Value.Upper)},{Fmt.Raw(r.Total)},{d}{tail}");
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

    /// <summary>True when <paramref name="path"/> is a fleet output (JSON or Parquet) stamped with exactly <paramref name="stamp"/>'s study and shard.</summary>
    public static bool HoldsShard(string path, StudyStamp stamp)
    {
        if (!File.Exists(path)) return false;
        try
        {
            StudyStamp? existing = CliOptions.Ext(path) switch
            {
                "parquet" => ReadParquetStamp(path),
                "json" => FleetStudyJson.Read(File.ReadAllText(path)).Stamp,
                _ => null,
            };
            return existing is not null && existing.SameAs(stamp);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private static StudyStamp? ReadParquetStamp(string path)
    {
        using var f = File.OpenRead(path);
        return FleetParquet.ReadStamp(f).Stamp;
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

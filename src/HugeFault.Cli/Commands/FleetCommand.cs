using System.CommandLine;
using System.Globalization;
using HugeFault.Cli.Render;
using HugeFault.Fleet;
using HugeFault.Fleet.Output;
using HugeFault.Reports.Output;
using HugeFault.Reports;

namespace HugeFault.Cli.Commands;

/// <summary>
/// <c>hugefault fleet [CONFIG.yaml]</c> and <c>hugefault fleet merge FILES…</c>: the fleet Monte Carlo. Thin: YAML and
/// flags → <see cref="FleetConfig"/> → <see cref="FleetMonteCarlo"/> → <see cref="FleetReport"/> → table / JSON / CSV /
/// plots / HTML / Parquet. Bad input of any kind is one line per problem on stderr and exit code 2, before the run.
/// </summary>
internal static class FleetCommand
{
    public const int UsageError = CliAction.UsageError;

    private static readonly Argument<string?> ConfigFile = CliOptions.OptionalFile("config", "fleet YAML file (optional; defaults in docs/fleet.md)");
    private static readonly Option<long?> Servers = CliOptions.Long("--servers", "servers to simulate (default 100000)", 1, 10_000_000_000L);
    private static readonly Option<double?> Years = CliOptions.Double("--years", "years per server (default 1)", "y");
    private static readonly Option<IReadOnlyList<string>?> Policy = CliOptions.Policies("comma-separated policies (default all: " + string.Join(",", FleetPolicies.Names) + ")", () => FleetPolicies.Names);
    private static readonly Option<string?> Seed = new("--seed") { Description = "root seed (default 1); the same seed gives the same results for any --threads or --shard", HelpName = "s" };
    private static readonly Option<long?> Threads = CliOptions.Long("--threads", "worker threads (default: processor count)", 1, 1024, "t");
    private static readonly Option<bool> Json = new("--json") { Description = "print one JSON object (with the raw accumulators 'merge' needs)" };
    private static readonly Option<bool> Csv = new("--csv") { Description = "print CSV rows: policy,metric,unit,mean,lo,hi,total,diff,diff_lo,diff_hi,study,shard" };
    private static readonly Option<string?> Plot = new("--plot") { Description = "write PNG and SVG plots into this folder", HelpName = "dir" };
    private static readonly Option<string?> Html = new("--html") { Description = "write the report and its plots as one self-contained HTML file", HelpName = "file.html" };
    private static readonly Option<string?> OutFile = new("--out") { Description = "write to a file, format from the extension: .parquet (tidy: one row per server with a UE pattern × policy, study metadata), .json, .csv, .txt or .html; {study} and {shard} in the name become the study id and shard", HelpName = "file" };
    private static readonly Option<string?> Shard = new("--shard") { Description = "run shard K of N (0-based); 'auto' reads JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID with HUGEFAULT_SHARDS (or the full Slurm array's size); without it the whole study runs, whatever the environment", HelpName = "K/N|auto" };
    private static readonly Option<bool> Force = new("--force") { Description = "rerun even when --out already holds this shard of this study (default: skip it, so array reruns are idempotent)" };
    private static readonly Option<bool> Partial = new("--partial") { Description = "merge even when shards are missing; the result is labelled partial in the table and the JSON" };
    private static readonly Option<bool> Wide = new("--wide") { Description = "print the table at full width" };

    private static readonly Argument<string[]> MergeFiles = CliOptions.Files("files", "JSON outputs of 'hugefault fleet --json --shard K/N' (or --out FILE.json)", ArgumentArity.OneOrMore);

    public static Command Create()
    {
        var cmd = new Command("fleet", "Fleet Monte Carlo: DRAM faults → UEs → every recovery policy, with 95% CIs and paired differences vs mainline.");
        cmd.Arguments.Add(ConfigFile);
        foreach (var o in new Option[] { Servers, Years, Policy, Seed, Threads, Json, Csv, Plot, Html, OutFile, Shard, Force, Wide }) cmd.Options.Add(o);
        CliOptions.JsonXorCsv(cmd, Json, Csv);
        cmd.Action = new CliAction(Run);
        var merge = new Command("merge", "Merge shard outputs into one result: one study, each shard exactly once (exact integer sums, any file order).");
        merge.Arguments.Add(MergeFiles);
        foreach (var o in new Option[] { Json, Csv, Plot, Html, OutFile, Partial, Wide }) merge.Options.Add(o);
        CliOptions.JsonXorCsv(merge, Json, Csv);
        merge.Action = new CliAction(RunMerge);
        cmd.Subcommands.Add(merge);
        return cmd;
    }

    private static int Run(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
        var config = new FleetConfig();
        string? file = parse.GetValue(ConfigFile);
        if (file is not null)
        {
            if (!File.Exists(file)) throw new UsageException($"config file '{file}' not found");
            var (loaded, errors) = FleetConfigLoader.Load(File.ReadAllText(file), file);
            if (loaded is null)
            {
                foreach (var e in errors) stderr.WriteLine(e);
                return UsageError;
            }
            config = loaded;
        }
        if (parse.GetValue(Servers) is { } s) config = config with { Servers = s };
        if (parse.GetValue(Years) is { } y) config = config with { Years = y };
        if (parse.GetValue(Seed) is { } sd)
            config = config with { Seed = ulong.TryParse(sd, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong v) ? v : throw new UsageException($"--seed must be an unsigned 64-bit integer (got '{sd}')") };
        if (parse.GetValue(Policy) is { } p) config = config with { Policies = p };
        int threads = (int)(parse.GetValue(Threads) ?? Environment.ProcessorCount);
        var (choice, shardError) = ShardSelection.Resolve(parse.GetValue(Shard), CliEnvironment.Get);
        if (choice is null) throw new UsageException(shardError!);
        var shard = choice.Shard;
        var problems = config.Validate();
        if (problems.Count > 0)
        {
            foreach (var e in problems) stderr.WriteLine($"hugefault fleet: {FlagFor(e.Path)} {e.Message}");
            return UsageError;
        }
        var stamp = StudyStamp.For(StudyIdentity.Of(config), shard);
        var outputs = Outputs.Check(parse, parquetAllowed: true, stamp);
        stderr.WriteLine($"hugefault fleet: study {stamp.Study.Id}, shard {stamp.Label} ({choice.Source})");
        if (outputs.Existing is { } done && !parse.GetValue(Force))
        {
            stderr.WriteLine($"hugefault fleet: {done} already holds shard {stamp.Label} of study {stamp.Study.Id}; skipped (--force reruns it)");
            return 0;
        }

        var (first, end) = shard.Range(config.Servers);
        FleetResult result; FleetBands? bands = null;
        if (outputs.WantsBands)
            (result, bands) = FleetProgress.Run(stderr, end - first, progress => FleetBatches.Run(config, threads, shard, collectRows: outputs.Parquet is not null, progress: progress));
        else if (outputs.Parquet is { } parquet)
        {
            // Streamed: the run hands each server's row to the writer in server order; row groups leave as they fill,
            // into a temp file renamed over the output when the footer is written.
            FleetResult? streamed = null;
            OutputFiles.Write(parquet, st =>
            {
                using var w = new FleetParquetWriter(st, config.Policies);
                streamed = FleetProgress.Run(stderr, end - first, progress => FleetMonteCarlo.Run(config, new FleetRunOptions(threads, shard, false, progress, w.Add)));
                w.Finish(streamed, stamp);
            });
            result = streamed!;
        }
        else
            result = FleetProgress.Run(stderr, end - first, progress => FleetMonteCarlo.Run(config, new FleetRunOptions(threads, shard, false, progress)));
        var report = FleetRender.Report(result);
        outputs.Emit(report, stamp, bands, stdout);
        if (outputs.Parquet is not null && bands is not null) OutputFiles.Write(outputs.Parquet, st => FleetParquet.Write(result, stamp, st));
        double secs = result.Elapsed.TotalSeconds;
        double serverYears = (end - first) * config.Years;
        stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"hugefault fleet: {end - first:N0} servers × {config.Years:0.###} y in {secs:0.00} s ({serverYears / Math.Max(secs, 1e-9):N0} server-years/s, {threads} thread(s), {config.Policies.Count} policies)"));
        return 0;
    }

    /// <summary>Output options, all checked (and {study}/{shard} expanded) before the simulation.</summary>
    private sealed record Outputs(bool AsJson, bool AsCsv, bool AsWide, string? PlotDir, string? HtmlFile, string? Out, string? Parquet, string? Existing)
    {
        public bool WantsBands => PlotDir is not null || HtmlFile is not null || Out is not null && CliOptions.Ext(Out) == "html";

        public static Outputs Check(ParseResult parse, bool parquetAllowed, StudyStamp stamp)
        {
            string? plot = parse.GetValue(Plot) is { } pd ? stamp.Expand(pd) : null, html = parse.GetValue(Html) is { } h ? stamp.Expand(h) : null;
            string? outFile = parse.GetValue(OutFile) is { } o ? stamp.Expand(o) : null;
            if (plot is not null) OutputFiles.CheckDir("--plot", plot);
            if (html is not null) OutputFiles.CheckFile("--html", html);
            string? parquet = null, existing = null;
            if (outFile is not null)
            {
                string ext = CliOptions.Ext(outFile);
                string[] allowed = parquetAllowed ? ["parquet", "json", "csv", "txt", "html"] : ["json", "csv", "txt", "html"];
                if (!allowed.Contains(ext))
                    throw new UsageException($"--out '{outFile}': unknown format '.{ext}'; use {string.Join(", ", allowed.Select(a => "." + a))}");
                OutputFiles.CheckFile("--out", outFile);
                if (ext == "parquet") { parquet = outFile; outFile = null; }
                existing = FleetRender.HoldsShard(parquet ?? outFile!, stamp) ? parquet ?? outFile : null;
            }
            return new Outputs(parse.GetValue(Json), parse.GetValue(Csv), parse.GetValue(Wide), plot, html, outFile, parquet, existing);
        }

        public void Emit(FleetReport report, StudyStamp stamp, FleetBands? bands, TextWriter stdout)
        {
            if (AsJson) stdout.WriteLine(FleetStudyJson.Write(report, stamp));
            else if (AsCsv) FleetRender.WriteCsv(report, stamp, stdout);
            else FleetRender.WriteTable(report, stamp, stdout, AsWide);
            if (PlotDir is not null) FleetRender.WritePlots(report, bands, PlotDir);
            if (HtmlFile is not null) OutputFiles.WriteText(HtmlFile, HugeFault.Reports.Html.HtmlReport.Fleet(report, bands));
            if (Out is not null)
            {
                var w = new StringWriter();
                switch (CliOptions.Ext(Out))
                {
                    case "json": w.WriteLine(FleetStudyJson.Write(report, stamp)); break;
                    case "csv": FleetRender.WriteCsv(report, stamp, w); break;
                    case "html": w.Write(HugeFault.Reports.Html.HtmlReport.Fleet(report, bands)); break;
                    default: FleetRender.WriteTable(report, stamp, w, wide: false, plain: true); break;
                }
                OutputFiles.WriteText(Out, w.ToString());
            }
        }
    }

    private static int RunMerge(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
        var parts = new List<ShardInput>();
        var errors = new List<string>();
        foreach (var f in parse.GetValue(MergeFiles) ?? [])
        {
            if (!File.Exists(f)) { errors.Add($"{f}: file not found"); continue; }
            var (r, stamp, err) = FleetStudyJson.Read(File.ReadAllText(f));
            if (r is null) errors.Add($"{f}: {err}");
            else parts.Add(new ShardInput(f, r, stamp!));
        }
        if (errors.Count > 0)
        {
            foreach (var e in errors) stderr.WriteLine($"hugefault fleet merge: {e}");
            return UsageError;
        }
        var (merged, mergedStamp, error) = ShardMerge.Merge(parts, parse.GetValue(Partial));
        if (merged is null) throw new UsageException(error!);
        var outputs = Outputs.Check(parse, parquetAllowed: false, mergedStamp!);
        if (mergedStamp!.Partial) stderr.WriteLine($"hugefault fleet merge: PARTIAL result of study {mergedStamp.Study.Id}: {mergedStamp.Label}");
        outputs.Emit(merged, mergedStamp, null, stdout);
        return 0;
    }

    private static string FlagFor(string path) => path switch
    {
        "run.servers" => "--servers",
        "run.years" => "--years",
        "run.policies" => "--policy",
        _ => path,
    };
}

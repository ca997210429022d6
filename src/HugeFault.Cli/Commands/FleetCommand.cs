using System.CommandLine;
using System.Globalization;
using HugeFault.Cli.Render;
using HugeFault.Fleet;
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
    private static readonly Option<bool> Csv = new("--csv") { Description = "print CSV rows: policy,metric,unit,mean,lo,hi,diff,diff_lo,diff_hi" };
    private static readonly Option<string?> Plot = new("--plot") { Description = "write PNG and SVG plots into this folder", HelpName = "dir" };
    private static readonly Option<string?> Html = new("--html") { Description = "write the report and its plots as one self-contained HTML file", HelpName = "file.html" };
    private static readonly Option<string?> OutFile = new("--out") { Description = "write to a file, format from the extension: .parquet (one row per server with a UE pattern), .json, .csv, .txt or .html", HelpName = "file" };
    private static readonly Option<string?> Shard = new("--shard") { Description = "run shard K of N (0-based), default from JOB_COMPLETION_INDEX+HUGEFAULT_SHARDS or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT", HelpName = "K/N" };
    private static readonly Option<bool> Wide = new("--wide") { Description = "print the table at full width" };

    private static readonly Argument<string[]> MergeFiles = CliOptions.Files("files", "JSON outputs of 'hugefault fleet --json --shard K/N'", ArgumentArity.OneOrMore);

    public static Command Create()
    {
        var cmd = new Command("fleet", "Fleet Monte Carlo: DRAM faults → UEs → every recovery policy, with 95% CIs and paired differences vs mainline.");
        cmd.Arguments.Add(ConfigFile);
        foreach (var o in new Option[] { Servers, Years, Policy, Seed, Threads, Json, Csv, Plot, Html, OutFile, Shard, Wide }) cmd.Options.Add(o);
        CliOptions.JsonXorCsv(cmd, Json, Csv);
        cmd.Action = new CliAction(Run);
        var merge = new Command("merge", "Merge the JSON outputs of shards into one result (exact integer sums).");
        merge.Arguments.Add(MergeFiles);
        foreach (var o in new Option[] { Json, Csv, Plot, Html, Wide }) merge.Options.Add(o);
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
        var shard = ResolveShard(parse.GetValue(Shard));
        var problems = config.Validate();
        if (problems.Count > 0)
        {
            foreach (var e in problems) stderr.WriteLine($"hugefault fleet: {FlagFor(e.Path)} {e.Message}");
            return UsageError;
        }
        var outputs = Outputs.Check(parse, parquetAllowed: true);

        var (first, end) = shard.Range(config.Servers);
        FleetResult result; FleetBands? bands = null;
        if (outputs.WantsBands)
            (result, bands) = FleetProgress.Run(stderr, end - first, progress => FleetBatches.Run(config, threads, shard, collectRows: outputs.Parquet is not null, progress: progress));
        else
            result = FleetProgress.Run(stderr, end - first, progress => FleetMonteCarlo.Run(config, new FleetRunOptions(threads, shard, outputs.Parquet is not null, progress)));
        var report = FleetRender.Report(result);
        outputs.Emit(report, bands, stdout);
        if (outputs.Parquet is not null) FleetRender.WriteParquet(result, outputs.Parquet);
        double secs = result.Elapsed.TotalSeconds;
        double serverYears = (end - first) * config.Years;
        stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"hugefault fleet: {end - first:N0} servers × {config.Years:0.###} y in {secs:0.00} s ({serverYears / Math.Max(secs, 1e-9):N0} server-years/s, {threads} thread(s), {config.Policies.Count} policies)"));
        return 0;
    }

    /// <summary>Output options, all checked before the simulation.</summary>
    private sealed record Outputs(bool AsJson, bool AsCsv, bool AsWide, string? PlotDir, string? HtmlFile, string? Out, string? Parquet)
    {
        public bool WantsBands => PlotDir is not null || HtmlFile is not null || Out is not null && CliOptions.Ext(Out) == "html";

        public static Outputs Check(ParseResult parse, bool parquetAllowed)
        {
            string? plot = parse.GetValue(Plot), html = parse.GetValue(Html), outFile = parquetAllowed ? parse.GetValue(OutFile) : null;
            if (plot is not null) OutputFiles.CheckDir("--plot", plot);
            if (html is not null) OutputFiles.CheckFile("--html", html);
            string? parquet = null;
            if (outFile is not null)
            {
                string ext = CliOptions.Ext(outFile);
                if (ext is not ("parquet" or "json" or "csv" or "txt" or "html"))
                    throw new UsageException($"--out '{outFile}': unknown format '.{ext}'; use .parquet, .json, .csv, .txt or .html");
                OutputFiles.CheckFile("--out", outFile);
                if (ext == "parquet") { parquet = outFile; outFile = null; }
            }
            return new Outputs(parse.GetValue(Json), parse.GetValue(Csv), parse.GetValue(Wide), plot, html, outFile, parquet);
        }

        public void Emit(FleetReport report, FleetBands? bands, TextWriter stdout)
        {
            if (AsJson) stdout.WriteLine(report.ToJson());
            else if (AsCsv) FleetRender.WriteCsv(report, stdout);
            else FleetRender.WriteTable(report, stdout, AsWide);
            if (PlotDir is not null) FleetRender.WritePlots(report, bands, PlotDir);
            if (HtmlFile is not null) OutputFiles.WriteText(HtmlFile, HugeFault.Reports.Html.HtmlReport.Fleet(report, bands));
            if (Out is not null)
            {
                var w = new StringWriter();
                switch (CliOptions.Ext(Out))
                {
                    case "json": w.WriteLine(report.ToJson()); break;
                    case "csv": FleetRender.WriteCsv(report, w); break;
                    case "html": w.Write(HugeFault.Reports.Html.HtmlReport.Fleet(report, bands)); break;
                    default: Terminal.Write(FleetSection.Build(report, "hugefault fleet"), w, new TerminalOptions(TerminalOptions.PipeWidth, true, false)); break;
                }
                OutputFiles.WriteText(Out, w.ToString());
            }
        }
    }

    private static int RunMerge(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
        var outputs = Outputs.Check(parse, parquetAllowed: false);
        var parts = new List<FleetReport>();
        var errors = new List<string>();
        foreach (var f in parse.GetValue(MergeFiles) ?? [])
        {
            if (!File.Exists(f)) { errors.Add($"{f}: file not found"); continue; }
            var (r, err) = FleetReport.FromJson(File.ReadAllText(f));
            if (r is null) errors.Add($"{f}: {err}");
            else parts.Add(r);
        }
        if (errors.Count > 0)
        {
            foreach (var e in errors) stderr.WriteLine($"hugefault fleet merge: {e}");
            return UsageError;
        }
        var (merged, error) = FleetReport.Merge(parts);
        if (merged is null) throw new UsageException(error!);
        if (merged.Tally.Servers == merged.Context.ServersTotal) merged = merged with { Context = merged.Context with { Shard = "all" } };
        outputs.Emit(merged, null, stdout);
        return 0;
    }

    /// <summary>--shard K/N, else the Kubernetes Indexed Job or Slurm array environment, else the whole fleet.</summary>
    internal static FleetShard ResolveShard(string? flag, Func<string, string?>? env = null)
    {
        env ??= CliEnvironment.Get;
        if (flag is not null) return ParseShard("--shard", flag);
        if (env("JOB_COMPLETION_INDEX") is { } k8s)
        {
            string total = env("HUGEFAULT_SHARDS") ?? throw new UsageException("JOB_COMPLETION_INDEX is set but HUGEFAULT_SHARDS (the job's completions) is not; set it or pass --shard K/N");
            return ParseShard("JOB_COMPLETION_INDEX/HUGEFAULT_SHARDS", $"{k8s}/{total}");
        }
        if (env("SLURM_ARRAY_TASK_ID") is { } id && env("SLURM_ARRAY_TASK_COUNT") is { } count)
        {
            long min = long.TryParse(env("SLURM_ARRAY_TASK_MIN"), NumberStyles.Integer, CultureInfo.InvariantCulture, out long m) ? m : 0;
            if (!long.TryParse(id, NumberStyles.Integer, CultureInfo.InvariantCulture, out long i))
                throw new UsageException($"SLURM_ARRAY_TASK_ID must be an integer (got '{id}')");
            return ParseShard("SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT", $"{i - min}/{count}");
        }
        return FleetShard.Whole;
    }

    private static FleetShard ParseShard(string what, string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) &&
            int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= 1 && k >= 0 && k < n)
            return new FleetShard(k, n);
        throw new UsageException($"{what} must be K/N with 0 ≤ K < N (got '{text}')");
    }

    private static string FlagFor(string path) => path switch
    {
        "run.servers" => "--servers",
        "run.years" => "--years",
        "run.policies" => "--policy",
        _ => path,
    };
}

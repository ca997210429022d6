using System.CommandLine;
using System.CommandLine.Invocation;
using System.Globalization;
using HugeFault.Cli.Render;
using HugeFault.Fleet;

namespace HugeFault.Cli.Commands;

/// <summary>
/// <c>hugefault fleet [CONFIG.yaml]</c> and <c>hugefault fleet merge FILES…</c>: the fleet Monte Carlo. Thin: YAML and
/// flags → <see cref="FleetConfig"/> → <see cref="FleetMonteCarlo"/> → <see cref="FleetReport"/> → table / JSON / CSV /
/// plots / Parquet. Bad input of any kind is one line per problem on stderr and exit code 2.
/// </summary>
internal static class FleetCommand
{
    public const int UsageError = 2;

    private static readonly Argument<string?> ConfigFile = new("config") { Description = "fleet YAML file (optional; defaults in docs/fleet.md)", Arity = ArgumentArity.ZeroOrOne };
    private static readonly Option<string?> Servers = new("--servers") { Description = "servers to simulate (default 100000)", HelpName = "n" };
    private static readonly Option<string?> Years = new("--years") { Description = "years per server (default 1)", HelpName = "y" };
    private static readonly Option<string?> Policy = new("--policy") { Description = "comma-separated policies (default all: " + string.Join(",", FleetPolicies.Names) + ")", HelpName = "a,b" };
    private static readonly Option<string?> Seed = new("--seed") { Description = "root seed (default 1); the same seed gives the same results for any --threads or --shard", HelpName = "s" };
    private static readonly Option<string?> Threads = new("--threads") { Description = "worker threads (default: processor count)", HelpName = "t" };
    private static readonly Option<bool> Json = new("--json") { Description = "print one JSON object (with the raw accumulators 'merge' needs)" };
    private static readonly Option<bool> Csv = new("--csv") { Description = "print CSV rows: policy,metric,unit,mean,lo,hi,diff,diff_lo,diff_hi" };
    private static readonly Option<string?> Plot = new("--plot") { Description = "write PNG and SVG plots into this folder", HelpName = "dir" };
    private static readonly Option<string?> OutFile = new("--out") { Description = "write per-server rows (servers with a UE pattern) to a Parquet file", HelpName = "file.parquet" };
    private static readonly Option<string?> Shard = new("--shard") { Description = "run shard K of N (0-based), default from JOB_COMPLETION_INDEX+HUGEFAULT_SHARDS or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT", HelpName = "K/N" };

    private static readonly Argument<string[]> MergeFiles = new("files") { Description = "JSON outputs of 'hugefault fleet --json --shard K/N'", Arity = ArgumentArity.OneOrMore };

    public static Command Create()
    {
        var cmd = new Command("fleet", "Fleet Monte Carlo: DRAM faults → UEs → every recovery policy, with 95% CIs and paired differences vs mainline.");
        cmd.Arguments.Add(ConfigFile);
        foreach (var o in new Option[] { Servers, Years, Policy, Seed, Threads, Json, Csv, Plot, OutFile, Shard }) cmd.Options.Add(o);
        cmd.Action = new FleetAction(Run);
        var merge = new Command("merge", "Merge the JSON outputs of shards into one result (exact integer sums).");
        merge.Arguments.Add(MergeFiles);
        foreach (var o in new Option[] { Json, Csv, Plot }) merge.Options.Add(o);
        merge.Action = new FleetAction(RunMerge);
        cmd.Subcommands.Add(merge);
        return cmd;
    }

    private sealed class UsageException(string message) : Exception(message);

    private sealed class FleetAction(Func<ParseResult, TextWriter, TextWriter, int> run) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            var config = parseResult.InvocationConfiguration;
            try
            {
                if (parseResult.Errors.Count > 0)
                    throw new UsageException($"{parseResult.Errors[0].Message} (see 'hugefault fleet --help')");
                if (parseResult.UnmatchedTokens.Count > 0)
                    throw new UsageException($"unrecognised argument '{parseResult.UnmatchedTokens[0]}' (see 'hugefault fleet --help')");
                return run(parseResult, config.Output, config.Error);
            }
            catch (UsageException e)
            {
                config.Error.WriteLine($"hugefault fleet: {e.Message}");
                return UsageError;
            }
        }
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
        if (parse.GetValue(Servers) is { } s) config = config with { Servers = ParseLong("--servers", s) };
        if (parse.GetValue(Years) is { } y) config = config with { Years = ParseDouble("--years", y) };
        if (parse.GetValue(Seed) is { } sd)
            config = config with { Seed = ulong.TryParse(sd, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong v) ? v : throw new UsageException($"--seed must be an unsigned 64-bit integer (got '{sd}')") };
        if (parse.GetValue(Policy) is { } p)
        {
            var names = p.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (var n in names)
                if (!FleetPolicies.TryParse(n, out _)) throw new UsageException($"--policy: unknown policy '{n}'; use {string.Join(", ", FleetPolicies.Names)}");
            config = config with { Policies = names };
        }
        int threads = parse.GetValue(Threads) is { } t ? (int)ParseLong("--threads", t) : Environment.ProcessorCount;
        if (threads < 1 || threads > 1024) throw new UsageException($"--threads must be between 1 and 1024 (got {threads})");
        var shard = ResolveShard(parse.GetValue(Shard));
        var problems = config.Validate();
        if (problems.Count > 0)
        {
            foreach (var e in problems) stderr.WriteLine($"hugefault fleet: {FlagFor(e.Path)} {e.Message}");
            return UsageError;
        }
        string? plotDir = parse.GetValue(Plot);
        string? outFile = parse.GetValue(OutFile);
        bool json = parse.GetValue(Json), csv = parse.GetValue(Csv);

        var (first, end) = shard.Range(config.Servers);
        var result = FleetProgress.Run(stderr, end - first, progress =>
            FleetMonteCarlo.Run(config, new FleetRunOptions(threads, shard, outFile is not null, progress)));
        var report = FleetRender.Report(result);
        Emit(report, stdout, json, csv, plotDir);
        if (outFile is not null) FleetRender.WriteParquet(result, outFile);
        double secs = result.Elapsed.TotalSeconds;
        double serverYears = (end - first) * config.Years;
        stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"hugefault fleet: {end - first:N0} servers × {config.Years:0.###} y in {secs:0.00} s ({serverYears / Math.Max(secs, 1e-9):N0} server-years/s, {threads} thread(s), {config.Policies.Count} policies)"));
        return 0;
    }

    private static int RunMerge(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
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
        Emit(merged, stdout, parse.GetValue(Json), parse.GetValue(Csv), parse.GetValue(Plot));
        return 0;
    }

    private static void Emit(FleetReport report, TextWriter stdout, bool json, bool csv, string? plotDir)
    {
        if (json) stdout.WriteLine(report.ToJson());
        else if (csv) FleetRender.WriteCsv(report, stdout);
        else FleetRender.WriteTable(report, stdout);
        if (plotDir is not null) FleetRender.WritePlots(report, plotDir);
    }

    /// <summary>--shard K/N, else the Kubernetes Indexed Job or Slurm array environment, else the whole fleet.</summary>
    internal static FleetShard ResolveShard(string? flag, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
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

    private static long ParseLong(string flag, string text)
    {
        if (long.TryParse(text.Replace("_", ""), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v)) return v;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e18) return (long)d;
        throw new UsageException($"{flag} must be a whole number (got '{text}')");
    }

    private static double ParseDouble(string flag, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v
            : throw new UsageException($"{flag} must be a number (got '{text}')");
}

using System.CommandLine;
using System.Diagnostics;
using HugeFault.Cli.Render;
using HugeFault.Fleet;
using HugeFault.Policies;
using HugeFault.Reports;
using HugeFault.Scenarios;

namespace HugeFault.Cli.Commands;

/// <summary>`hugefault compare [SCENARIO…]`: every policy side by side; the summary and verdict first.</summary>
internal static class CompareCommand
{
    /// <summary>Built-in scenarios compared when no file is given.</summary>
    public static readonly string[] DefaultSets = ["policies/", "vm/"];
    public const long DefaultFleetServers = 100_000;

    private static readonly Argument<string[]> Files = CliOptions.Files("scenario", "scenario files or folders, or builtin:NAME; none = the built-in policy and VM scenarios", ArgumentArity.ZeroOrMore);
    private static readonly Option<IReadOnlyList<string>?> Policy = CliOptions.RecoveryPolicyList();
    private static readonly Option<bool> Json = new("--json") { Description = "one JSON object on stdout (scenarios, summary, verdict, fleet, sensitivity)" };
    private static readonly Option<bool> Csv = new("--csv") { Description = "CSV on stdout: one row per (section, scenario, policy, metric), the fleet included" };
    private static readonly Option<long?> FleetServers = CliOptions.Long("--fleet-servers", $"servers in the default fleet run (default {DefaultFleetServers:N0} when no scenario is given, else 0 = none)", 0, 100_000_000);
    private static readonly Option<long?> SensServers = CliOptions.Long("--sensitivity-servers", $"servers per sensitivity re-run (default {Sensitivity.DefaultServers:N0} when the fleet runs; 0 = skip)", 0, 100_000_000);
    private static readonly Option<long?> Threads = CliOptions.Long("--threads", "worker threads (default: processor count); results do not depend on it", 1, 1024);
    private static readonly Option<string?> Plot = new("--plot") { Description = "write the fleet plots (PNG and SVG) into this folder", HelpName = "dir" };
    private static readonly Option<string?> Html = new("--html") { Description = "write the whole report as one self-contained HTML file", HelpName = "file.html" };
    private static readonly Option<string?> OutFile = new("--out") { Description = "also write the report to a file; the format follows the extension: .txt, .json, .csv or .html", HelpName = "file" };
    private static readonly Option<bool> Wide = new("--wide") { Description = "print every table at full width (no splitting for the terminal)" };

    public static Command Create()
    {
        var cmd = new Command("compare", "Run scenarios and the default fleet under every recovery policy; print the summary, the verdict and the evidence.");
        cmd.Arguments.Add(Files);
        foreach (var o in new Option[] { Policy, Json, Csv, FleetServers, SensServers, Threads, Plot, Html, OutFile, Wide }) cmd.Options.Add(o);
        CliOptions.JsonXorCsv(cmd, Json, Csv);
        cmd.Action = new CliAction(Run);
        return cmd;
    }

    private static int Run(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
        var files = parse.GetValue(Files) ?? [];
        var policies = parse.GetValue(Policy) ?? RecoveryPolicies.Names;
        long servers = parse.GetValue(FleetServers) ?? (files.Length == 0 ? DefaultFleetServers : 0);
        long sens = servers == 0 ? 0 : parse.GetValue(SensServers) ?? Sensitivity.DefaultServers;
        int threads = (int)(parse.GetValue(Threads) ?? Environment.ProcessorCount);
        string? html = parse.GetValue(Html), plot = parse.GetValue(Plot), outFile = parse.GetValue(OutFile);
        // every output path is checked before any simulation starts
        if (html is not null) OutputFiles.CheckFile("--html", html);
        if (plot is not null) OutputFiles.CheckDir("--plot", plot);
        if (outFile is not null)
        {
            if (CliOptions.Ext(outFile) is not ("txt" or "json" or "csv" or "html"))
                throw new UsageException($"--out '{outFile}': unknown format '.{CliOptions.Ext(outFile)}'; use a .txt, .json, .csv or .html file name");
            OutputFiles.CheckFile("--out", outFile);
        }

        var timing = Timing.FromEnvironment();
        var clock = Stopwatch.StartNew();
        List<Scenario> scenarios = new(); List<string> errors = new();
        if (files.Length == 0)
            foreach (var set in DefaultSets) { var (s, e) = ScenarioInputs.Load([], set, threads); scenarios.AddRange(s); errors.AddRange(e); }
        else (scenarios, errors) = ScenarioInputs.Load(files, threads: threads);
        if (errors.Count > 0) { foreach (var e in errors) stderr.WriteLine(e); return CliAction.UsageError; }
        timing?.Phase("parse");

        bool wantPictures = html is not null || CliOptions.Ext(outFile ?? "") == "html";
        var fleetCfg = servers > 0 ? new FleetConfig { Servers = servers, Policies = policies.Where(p => FleetPolicies.TryParse(p, out _)).ToList() } : null;
        if (fleetCfg?.Policies.Count == 0) fleetCfg = null;
        // The scenario runs, the default fleet and the sensitivity re-runs are independent (each its own kernels and
        // seeds) and run at once, each on up to `threads` workers: no part waits for another's slowest job. The
        // results are the same as one after another; a part's failure is rethrown as itself, scenario runs first.
        static Task<T> Started<T>(Func<T> part) => Task.Factory.StartNew(part, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var fleetPart = fleetCfg is null ? null : Started(() =>
        {
            var (result, b) = FleetProgress.Run(stderr, servers, progress => FleetBatches.Run(fleetCfg, threads, FleetShard.Whole, progress: progress), linesWhenNotTerminal: false);
            return (Report: FleetRender.Report(result), Bands: b, Seconds: clock.Elapsed.TotalSeconds);
        });
        var sensPart = fleetCfg is null || sens == 0 ? null : Started(() => (Result: Sensitivity.Run(fleetCfg, sens, threads, FleetRender.Report), Seconds: clock.Elapsed.TotalSeconds));
        var runSeconds = new double[scenarios.Count * policies.Count];
        IReadOnlyList<RunMetrics> rows; Dictionary<(string, string), HugeFault.Mm.PageTableSnapshot> snaps;
        double tScenarios;
        try { (rows, snaps) = CompareRunner.RunScenarios(scenarios, policies, wantPictures, threads, runSeconds); tScenarios = clock.Elapsed.TotalSeconds; }
        finally { try { Task.WaitAll([.. new Task?[] { fleetPart, sensPart }.OfType<Task>()]); } catch (AggregateException) { } }
        var (fleet, bands, tFleet) = fleetPart is null ? (null, null, 0) : fleetPart.GetAwaiter().GetResult();
        var (sensitivity, tSens) = sensPart is null ? (null, 0) : sensPart.GetAwaiter().GetResult();
        timing?.Phase(FormattableString.Invariant($"scenario runs ({runSeconds.Sum() * 1000:0} ms of work, done at {tScenarios:0.00} s), fleet (done at {tFleet:0.00} s) and sensitivity (done at {tSens:0.00} s) at once"));
        var result2 = new CompareResult(scenarios, policies, rows, fleet, bands, sensitivity, snaps);
        var doc = CompareReport.Build(result2);
        timing?.Phase("report");

        if (parse.GetValue(Json)) stdout.WriteLine(CompareOutput.Json(result2));
        else if (parse.GetValue(Csv)) stdout.Write(CompareOutput.Csv(result2));
        else Terminal.Write(doc, stdout, TerminalOptions.Detect(stdout, parse.GetValue(Wide)));

        if (outFile is not null)
            OutputFiles.WriteText(outFile, CliOptions.Ext(outFile) switch
            {
                "json" => CompareOutput.Json(result2) + "\n",
                "csv" => CompareOutput.Csv(result2),
                "html" => HugeFault.Reports.Html.HtmlReport.Compare(result2),
                _ => CompareOutput.Text(doc),
            });
        if (html is not null) OutputFiles.WriteText(html, HugeFault.Reports.Html.HtmlReport.Compare(result2));
        if (plot is not null && fleet is not null) FleetRender.WritePlots(fleet, bands, plot);
        timing?.Phase("output");
        if (timing is not null)
        {
            timing.Slowest("slowest scenario runs", rows.Select((r, i) => ($"{r.Scenario} under {r.Policy}", runSeconds[i])));
            timing.Slowest("scenario work by scenario", scenarios.Select((sc, i) => ($"{sc.Name} (all {policies.Count} policies)", runSeconds.Skip(i * policies.Count).Take(policies.Count).Sum())), 5);
            timing.Write(stderr, "compare");
        }
        string sensText = sensitivity is null ? "no sensitivity runs" : FormattableString.Invariant($"sensitivity {sensitivity.Runs.Count + 1} runs × {sens:N0} servers done at {tSens:0.00} s");
        stderr.WriteLine(FormattableString.Invariant(
            $"hugefault compare: {scenarios.Count} scenarios × {policies.Count} policies done at {tScenarios:0.00} s; fleet {servers:N0} servers done at {tFleet:0.00} s; {sensText} (the three at once); total {clock.Elapsed.TotalSeconds:0.00} s on {threads} thread(s)"));
        return 0;
    }
}

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
            foreach (var set in DefaultSets) { var (s, e) = ScenarioInputs.Load([], set); scenarios.AddRange(s); errors.AddRange(e); }
        else (scenarios, errors) = ScenarioInputs.Load(files);
        if (errors.Count > 0) { foreach (var e in errors) stderr.WriteLine(e); return CliAction.UsageError; }
        timing?.Phase("parse");

        bool wantPictures = html is not null || CliOptions.Ext(outFile ?? "") == "html";
        var runSeconds = new double[scenarios.Count * policies.Count];
        var (rows, snaps) = CompareRunner.RunScenarios(scenarios, policies, wantPictures, threads, runSeconds);
        double tScenarios = clock.Elapsed.TotalSeconds;
        timing?.Phase(FormattableString.Invariant($"scenario runs ({runSeconds.Sum() * 1000:0} ms of work)"));

        FleetReport? fleet = null; FleetBands? bands = null; SensitivityResult? sensitivity = null;
        double tFleet = 0, tSens = 0;
        if (servers > 0)
        {
            var cfg = new FleetConfig { Servers = servers, Policies = policies.Where(p => FleetPolicies.TryParse(p, out _)).ToList() };
            if (cfg.Policies.Count > 0)
            {
                var (result, b) = FleetProgress.Run(stderr, servers, progress => FleetBatches.Run(cfg, threads, FleetShard.Whole, progress: progress), linesWhenNotTerminal: false);
                fleet = FleetRender.Report(result);
                bands = b;
                tFleet = clock.Elapsed.TotalSeconds - tScenarios;
                timing?.Phase("fleet");
                if (sens > 0) sensitivity = Sensitivity.Run(cfg, sens, threads, FleetRender.Report);
                tSens = clock.Elapsed.TotalSeconds - tScenarios - tFleet;
                timing?.Phase("sensitivity");
            }
        }
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
        string sensText = sensitivity is null ? "no sensitivity runs" : FormattableString.Invariant($"sensitivity {sensitivity.Runs.Count + 1} runs × {sens:N0} servers in {tSens:0.00} s");
        stderr.WriteLine(FormattableString.Invariant(
            $"hugefault compare: {scenarios.Count} scenarios × {policies.Count} policies in {tScenarios:0.00} s; fleet {servers:N0} servers in {tFleet:0.00} s; {sensText}; total {clock.Elapsed.TotalSeconds:0.00} s on {threads} thread(s)"));
        return 0;
    }
}

using System.CommandLine;
using System.Globalization;
using HugeFault.Cli.Render;
using HugeFault.Fleet;
using HugeFault.Policies;
using HugeFault.Scenarios;
using Spectre.Console;

namespace HugeFault.Cli.Commands;

/// <summary>`hugefault compare [SCENARIO…]`: every policy side by side on the same work.</summary>
internal static class CompareCommand
{
    /// <summary>Built-in scenarios compared when no file is given.</summary>
    public static readonly string[] DefaultSets = ["policies/", "vm/"];

    public static Command Create()
    {
        var files = new Argument<string[]>("scenario") { Description = "Scenario files or folders, or builtin:NAME; none = the built-in policy and VM scenarios", Arity = ArgumentArity.ZeroOrMore };
        var policy = new Option<string?>("--policy") { Description = "Comma-separated policies (default: all: " + string.Join(",", RecoveryPolicies.Names) + ")" };
        var json = new Option<bool>("--json") { Description = "JSON on stdout" };
        var csv = new Option<bool>("--csv") { Description = "CSV on stdout" };
        var fleet = new Option<string?>("--fleet-servers") { Description = "Servers in the default fleet run (default 100000 when no scenario is given, else 0 = none)" };
        var plot = new Option<string?>("--plot") { Description = "Write the fleet plots (PNG and SVG) to this folder" };
        var cmd = new Command("compare", "Run scenarios and a default fleet under every recovery policy and compare what each costs.") { files, policy, json, csv, fleet, plot };
        cmd.SetAction(pr => Execute(pr.GetValue(files) ?? [], pr.GetValue(policy), pr.GetValue(json), pr.GetValue(csv), Console.Out, pr.GetValue(fleet), pr.GetValue(plot)));
        return cmd;
    }

    public static int Execute(string[] files, string? policyList, bool json, bool csv, TextWriter w, string? fleetServers = "0", string? plotDir = null)
    {
        if (json && csv) return Out.UserError("--json and --csv: choose one output format");
        long servers = files.Length == 0 ? 100_000 : 0;
        if (fleetServers is not null && (!long.TryParse(fleetServers, NumberStyles.Integer, CultureInfo.InvariantCulture, out servers) || servers < 0 || servers > 100_000_000))
            return Out.UserError($"--fleet-servers must be a whole number from 0 to 100000000 (got '{fleetServers}')");
        var policies = policyList is null ? RecoveryPolicies.Names.ToList() : policyList.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
        foreach (var p in policies)
            if (!RecoveryPolicies.Exists(p)) return Out.UserError($"--policy: unknown policy '{p}'; known: {string.Join(", ", RecoveryPolicies.Names)}");
        if (policies.Count == 0) return Out.UserError("--policy: give at least one policy, e.g. --policy mainline,hgm");
        List<Scenario> scenarios; List<string> errors;
        if (files.Length == 0)
        {
            scenarios = new(); errors = new();
            foreach (var set in DefaultSets) { var (s, e) = ScenarioInputs.Load([], set); scenarios.AddRange(s); errors.AddRange(e); }
        }
        else (scenarios, errors) = ScenarioInputs.Load(files);
        if (errors.Count > 0) { foreach (var e in errors) Console.Error.WriteLine(e); return 2; }
        var rows = Comparison.Compare(scenarios, policies);
        FleetReport? fleetReport = null;
        if (servers > 0)
        {
            // the default fleet (README, docs/fleet.md): same policies, common random numbers
            var cfg = new FleetConfig { Servers = servers, Policies = policies.Where(p => FleetPolicies.TryParse(p, out _)).ToList() };
            var result = FleetProgress.Run(Console.Error, servers, progress => FleetMonteCarlo.Run(cfg, new FleetRunOptions(Environment.ProcessorCount, FleetShard.Whole, false, progress)));
            fleetReport = FleetRender.Report(result);
            if (plotDir is not null) FleetRender.WritePlots(fleetReport, plotDir);
        }
        if (json) w.WriteLine(CompareRender.Json(rows, fleetReport is null ? null : j => { j.WritePropertyName("fleet"); using var doc = System.Text.Json.JsonDocument.Parse(fleetReport.ToJson()); doc.WriteTo(j); }));
        else if (csv) w.Write(CompareRender.Csv(rows));
        else
        {
            var c = Out.Create(w);
            CompareRender.Table(c, rows);
            c.MarkupLine($"{scenarios.Count} scenarios x {policies.Count} policies. 'expectations' = whether the scenario's own expectations (written for its policy) hold under this policy.");
            if (fleetReport is not null)
            {
                c.WriteLine();
                c.Write(new Rule($"[bold]default fleet: {servers:N0} servers x 1 year (hugefault fleet --servers {servers})[/]").LeftJustified());
                FleetRender.WriteTable(fleetReport, w);
            }
        }
        return 0;
    }
}

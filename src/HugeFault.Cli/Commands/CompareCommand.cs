using System.CommandLine;
using HugeFault.Cli.Render;
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
        var cmd = new Command("compare", "Run scenarios under every recovery policy and compare what each costs.") { files, policy, json, csv };
        cmd.SetAction(pr => Execute(pr.GetValue(files) ?? [], pr.GetValue(policy), pr.GetValue(json), pr.GetValue(csv), Console.Out));
        return cmd;
    }

    public static int Execute(string[] files, string? policyList, bool json, bool csv, TextWriter w)
    {
        if (json && csv) return Out.UserError("--json and --csv: choose one output format");
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
        if (json) w.WriteLine(CompareRender.Json(rows));
        else if (csv) w.Write(CompareRender.Csv(rows));
        else
        {
            var c = Out.Create(w);
            CompareRender.Table(c, rows);
            c.MarkupLine($"{scenarios.Count} scenarios x {policies.Count} policies. 'expectations' = whether the scenario's own expectations (written for its policy) hold under this policy.");
        }
        return 0;
    }
}

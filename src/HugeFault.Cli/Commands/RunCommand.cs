using System.CommandLine;
using HugeFault.Cli.Render;
using HugeFault.Policies;
using HugeFault.Scenarios;
using Spectre.Console;

namespace HugeFault.Cli.Commands;

/// <summary>`hugefault run FILE…`: run scenarios on the kernel model, print traces, check expectations.</summary>
internal static class RunCommand
{
    private static readonly Argument<string[]> Files = CliOptions.Files("scenario", "scenario files or folders, or builtin:NAME; none = every built-in scenario", ArgumentArity.ZeroOrMore);
    private static readonly Option<bool> Json = new("--json") { Description = "JSON lines instead of tables (with --summary: only the summary line of each scenario)" };
    private static readonly Option<string?> Policy = new("--policy") { Description = "override the scenarios' policy (" + string.Join(", ", RecoveryPolicies.Names) + ")", HelpName = "name" };
    private static readonly Option<bool> Quiet = new("--summary") { Description = "only a summary line per scenario" };

    public static Command Create()
    {
        Policy.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is { } p && !RecoveryPolicies.Exists(p))
                r.AddError($"--policy: unknown policy '{p}'; known: {string.Join(", ", RecoveryPolicies.Names)}");
        });
        var cmd = new Command("run", "Run scenario files on the kernel model and check their expectations.");
        cmd.Arguments.Add(Files);
        foreach (var o in new Option[] { Json, Policy, Quiet }) cmd.Options.Add(o);
        cmd.Action = new CliAction((parse, stdout, stderr) => Execute(parse.GetValue(Files) ?? [], parse.GetValue(Json), parse.GetValue(Policy), parse.GetValue(Quiet), stdout, stderr));
        return cmd;
    }

    public static int Execute(string[] files, bool json, string? policy, bool summaryOnly, TextWriter w, TextWriter? err = null)
    {
        err ??= Console.Error;
        if (policy is not null && !RecoveryPolicies.Exists(policy))
            return Out.UserError($"--policy: unknown policy '{policy}'; known: {string.Join(", ", RecoveryPolicies.Names)}", err);
        var (scenarios, errors) = ScenarioInputs.Load(files);
        if (errors.Count > 0) { foreach (var e in errors) err.WriteLine(e); return 2; }
        var c = Out.Create(w);
        int failed = 0;
        foreach (var sc in scenarios)
        {
            var run = ScenarioRunner.Run(sc, policy);
            if (!run.Passed) failed++;
            if (json) ScenarioRender.JsonLines(w, run, summaryOnly);
            else ScenarioRender.Table(c, run, showTrace: !summaryOnly);
        }
        if (!json) c.MarkupLine($"[bold]{scenarios.Count - failed} of {scenarios.Count} scenarios passed[/]");
        return failed == 0 ? 0 : 1;
    }
}

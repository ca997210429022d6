using System.CommandLine;
using HugeFault.Cli.Render;
using HugeFault.Policies;
using HugeFault.Scenarios;
using Spectre.Console;

namespace HugeFault.Cli.Commands;

/// <summary>`hugefault run FILE…`: run scenarios on the kernel model, print traces, check expectations.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("scenario") { Description = "Scenario files or folders, or builtin:NAME; none = every built-in scenario", Arity = ArgumentArity.ZeroOrMore };
        var json = new Option<bool>("--json") { Description = "JSON lines instead of tables" };
        var policy = new Option<string?>("--policy") { Description = "Override the scenarios' policy (" + string.Join(", ", RecoveryPolicies.Names) + ")" };
        var quiet = new Option<bool>("--summary") { Description = "Only a summary line per scenario" };
        var cmd = new Command("run", "Run scenario files on the kernel model and check their expectations.") { files, json, policy, quiet };
        cmd.SetAction(pr => Execute(pr.GetValue(files) ?? [], pr.GetValue(json), pr.GetValue(policy), pr.GetValue(quiet), Console.Out));
        return cmd;
    }

    public static int Execute(string[] files, bool json, string? policy, bool summaryOnly, TextWriter w)
    {
        if (policy is not null && !RecoveryPolicies.Exists(policy))
            return Out.UserError($"--policy: unknown policy '{policy}'; known: {string.Join(", ", RecoveryPolicies.Names)}");
        var (scenarios, errors) = ScenarioInputs.Load(files);
        if (errors.Count > 0) { foreach (var e in errors) Console.Error.WriteLine(e); return 2; }
        var c = Out.Create(w);
        int failed = 0;
        foreach (var sc in scenarios)
        {
            var run = ScenarioRunner.Run(sc, policy);
            if (!run.Passed) failed++;
            if (json) ScenarioRender.JsonLines(w, run);
            else ScenarioRender.Table(c, run, showTrace: !summaryOnly);
        }
        if (!json) c.MarkupLine($"[bold]{scenarios.Count - failed} of {scenarios.Count} scenarios passed[/]");
        return failed == 0 ? 0 : 1;
    }
}

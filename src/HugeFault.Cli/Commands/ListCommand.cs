using System.CommandLine;
using HugeFault.Cli.Render;
using HugeFault.Policies;
using HugeFault.Reports;
using HugeFault.Scenarios;

namespace HugeFault.Cli.Commands;

/// <summary>`hugefault list`: the built-in scenarios (builtin: names, one-line descriptions) and the policies with their parameters.</summary>
internal static class ListCommand
{
    private static readonly Option<bool> Wide = new("--wide") { Description = "print the tables at full width" };

    public static Command Create()
    {
        var cmd = new Command("list", "List the built-in scenarios and the recovery policies with their parameters and defaults.");
        cmd.Options.Add(Wide);
        cmd.Action = new CliAction((parse, stdout, _) =>
        {
            Terminal.Write(Build(), stdout, TerminalOptions.Detect(stdout, parse.GetValue(Wide)));
            return 0;
        });
        return cmd;
    }

    public static ReportDoc Build()
    {
        var doc = new ReportDoc();
        var pol = new TextTable("Recovery policies (host.policy in a scenario, --policy on the command line)",
            [new("policy", Right: false), new("design", Right: false), new("parameters (host.policy_params) = default", Right: false), new("falls back when", Right: false)]);
        foreach (var n in RecoveryPolicies.Names)
        {
            var i = RecoveryPolicies.Describe(n);
            pol.Row(n + (i.Extrapolation ? " (extrapolation)" : ""), TextCell.Text(i.Summary),
                new TextCell(i.Parameters.Select(p => $"{p.Name}={p.Default}: {p.Description}").ToList(), Wrap: true),
                TextCell.Text(i.FallsBackWhen ?? "never"));
        }
        doc.Table(pol);
        var sc = new TextTable($"Built-in scenarios ({BuiltinScenarios.Names.Count}; run one with 'hugefault run builtin:NAME', a folder with 'builtin:PREFIX')",
            [new("name", Right: false), new("policy", Right: false), new("description", Right: false)]);
        foreach (var n in BuiltinScenarios.Names)
        {
            var (s, _) = ScenarioParser.Parse("builtin:" + n, BuiltinScenarios.Read(n));
            sc.Row("builtin:" + n, s?.Host.Policy ?? "?", TextCell.Text(s?.Name ?? "(does not parse)"));
        }
        doc.Table(sc);
        return doc;
    }
}

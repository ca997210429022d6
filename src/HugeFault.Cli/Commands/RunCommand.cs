using System.CommandLine;
using System.Diagnostics;
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
    private static readonly Option<long?> Threads = CliOptions.Long("--threads", "worker threads running the scenarios (default: processor count); the output does not depend on it", 1, 1024);

    public static Command Create()
    {
        Policy.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is { } p && !RecoveryPolicies.Exists(p))
                r.AddError($"--policy: unknown policy '{p}'; known: {string.Join(", ", RecoveryPolicies.Names)}");
        });
        var cmd = new Command("run", "Run scenario files on the kernel model and check their expectations.");
        cmd.Arguments.Add(Files);
        foreach (var o in new Option[] { Json, Policy, Quiet, Threads }) cmd.Options.Add(o);
        cmd.Action = new CliAction((parse, stdout, stderr) => Execute(parse.GetValue(Files) ?? [], parse.GetValue(Json), parse.GetValue(Policy), parse.GetValue(Quiet), stdout, stderr,
            (int)(parse.GetValue(Threads) ?? Environment.ProcessorCount)));
        return cmd;
    }

    /// <summary>
    /// Runs the scenarios on <paramref name="threads"/> workers (each scenario its own kernel) and prints each run in
    /// scenario order as soon as it and those before it are done: the output is the same whatever the thread count.
    /// </summary>
    public static int Execute(string[] files, bool json, string? policy, bool summaryOnly, TextWriter w, TextWriter? err = null, int threads = 1)
    {
        err ??= Console.Error;
        var timing = Timing.FromEnvironment();
        if (policy is not null && !RecoveryPolicies.Exists(policy))
            return Out.UserError($"--policy: unknown policy '{policy}'; known: {string.Join(", ", RecoveryPolicies.Names)}", err);
        var (scenarios, errors) = ScenarioInputs.Load(files, threads: threads);
        if (errors.Count > 0) { foreach (var e in errors) err.WriteLine(e); return 2; }
        timing?.Phase("parse");
        var c = Out.Create(w);
        // not a terminal: each run is printed by the job that ran it, into memory exactly as it would print here, and
        // written in one piece (a terminal gets each table as it renders)
        bool printOnWorkers = !Out.IsTerminal(w);
        int failed = 0;
        var seconds = new double[scenarios.Count];
        var printSeconds = new double[scenarios.Count];
        double writing = 0;
        string Print(ScenarioRun run)
        {
            if (json) { var sw = new StringWriter(); ScenarioRender.JsonLines(sw, run, summaryOnly); return sw.ToString(); }
            var (bc, text) = Out.Buffer(w);
            ScenarioRender.Table(bc, run, showTrace: !summaryOnly);
            return text.ToString();
        }
        OrderedParallel.Run(scenarios.Count, threads, i =>
        {
            long t0 = Stopwatch.GetTimestamp();
            var run = ScenarioRunner.Run(scenarios[i], policy);
            seconds[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            string? text = printOnWorkers ? Print(run) : null;
            printSeconds[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds - seconds[i];
            return (run.Passed, Text: text, Run: printOnWorkers ? null : run);
        }, (_, r) =>
        {
            long t0 = Stopwatch.GetTimestamp();
            if (!r.Passed) failed++;
            if (r.Text is not null) w.Write(r.Text);
            else if (json) ScenarioRender.JsonLines(w, r.Run!, summaryOnly);
            else ScenarioRender.Table(c, r.Run!, showTrace: !summaryOnly);
            writing += Stopwatch.GetElapsedTime(t0).TotalSeconds;
        });
        if (!json) c.MarkupLine($"[bold]{scenarios.Count - failed} of {scenarios.Count} scenarios passed[/]");
        if (timing is not null)
        {
            timing.Phase(FormattableString.Invariant($"run and print on {threads} thread(s) (scenario runs {seconds.Sum() * 1000:0} ms of work, printing into memory {printSeconds.Sum() * 1000:0} ms, writing out {writing * 1000:0} ms)"));
            timing.Slowest("slowest scenarios", scenarios.Select((sc, i) => (sc.File, seconds[i])));
            timing.Write(err, "run");
        }
        return failed == 0 ? 0 : 1;
    }
}

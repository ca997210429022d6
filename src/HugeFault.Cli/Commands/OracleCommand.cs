using System.CommandLine;
using HugeFault.Oracle;
using HugeFault.Scenarios;

namespace HugeFault.Cli.Commands;

/// <summary>
/// `hugefault oracle SCENARIO…`: runs mainline scenarios on the model and on a real Linux kernel (qemu, via
/// tools/realkernel) and prints per step whether the two agree, with both values side by side.
/// </summary>
internal static class OracleCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("scenario") { Description = "Scenario files or folders (only those with mainline: true are compared)", Arity = ArgumentArity.OneOrMore };
        var modelOnly = new Option<bool>("--model-only") { Description = "Do not boot: compare with the recorded real traces (" + OracleSession.RecordedDir + ")" };
        var record = new Option<bool>("--record") { Description = "Boot the real kernel and store the traces as the recorded ones" };
        var results = new Option<string?>("--results") { Description = "Folder for real traces and summary.json (default: the recorded folder with --record or --model-only, else .cache/realkernel/oracle-runs)" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds per boot", DefaultValueFactory = _ => 300 };
        var verbose = new Option<bool>("--verbose") { Description = "Show every compared field, not only mismatches" };
        var strict = new Option<bool>("--fail-on-mismatch") { Description = "Exit 1 if any compared step differs" };
        var writeSummary = new Option<bool>("--write-summary") { Description = "With --model-only: rewrite summary.json next to the traces (after a model change)" };
        var cmd = new Command("oracle", "Differential check: run mainline scenarios on the model and on a real Linux kernel and compare step by step.")
            { files, modelOnly, record, results, timeout, verbose, strict, writeSummary };
        cmd.SetAction(pr => Execute(pr.GetValue(files) ?? [], pr.GetValue(modelOnly), pr.GetValue(record), pr.GetValue(results),
            pr.GetValue(timeout), pr.GetValue(verbose), pr.GetValue(strict), Console.Out, Console.Error, pr.GetValue(writeSummary)));
        return cmd;
    }

    public static int Execute(string[] files, bool modelOnly, bool record, string? results, int timeoutS, bool verbose, bool strict, TextWriter w, TextWriter err, bool writeSummary = false)
    {
        if (modelOnly && record) { err.WriteLine("--model-only and --record exclude each other"); return 2; }
        var (scenarios, errors) = ScenarioInputs.Load(files);
        if (errors.Count > 0) { foreach (var e in errors) err.WriteLine(e); return 2; }
        scenarios = scenarios.Where(s => s.Mainline).ToList();
        if (scenarios.Count == 0) { err.WriteLine("no scenario with mainline: true among the arguments"); return 2; }
        string? repo = OracleSession.RepoRoot();
        string recorded = repo is null ? OracleSession.RecordedDir : Path.Combine(repo, OracleSession.RecordedDir);
        string dir = results ?? (modelOnly || record ? recorded : Path.Combine(repo ?? ".", ".cache", "realkernel", "oracle-runs"));
        if (!modelOnly)
        {
            if (repo is null) { err.WriteLine("cannot find the repository (HugeFault.slnx) for tools/realkernel"); return 2; }
            var kver = OracleSession.RunReal(scenarios, repo, dir, timeoutS, err);
            if (kver is null) { err.WriteLine("the real-kernel harness could not be set up (tools/realkernel/setup.sh or build-initramfs.sh failed)"); return 1; }
            w.WriteLine($"real kernel: {kver}");
        }
        var list = scenarios.Select(sc => OracleSession.CompareRecorded(sc, dir)).ToList();
        var kernels = list.Where(r => r.Status == "compared").Select(r => r.Kernel).Distinct().ToList();
        w.WriteLine($"kernel used for the real traces: {(kernels.Count == 0 ? "none" : string.Join(", ", kernels))} (traces in {dir})");
        foreach (var r in list) OracleSession.Print(w, r, verbose);
        if (!modelOnly || writeSummary) OracleSession.WriteSummary(dir, list);
        int cmp = list.Count(r => r.Status == "compared");
        w.WriteLine($"{cmp} of {list.Count} scenarios compared; {list.Count(r => r.Status == "compared" && r.MismatchedSteps == 0)} match in every step; "
            + $"{list.Sum(r => r.MatchedSteps)} steps match, {list.Sum(r => r.MismatchedSteps)} differ; expectations pass on Linux in {list.Count(r => r.RealPassed == true)}");
        if (list.Any(r => r.Status is "real-failed" or "no-real-trace")) return 1;
        return strict && list.Any(r => r.MismatchedSteps > 0) ? 1 : 0;
    }
}

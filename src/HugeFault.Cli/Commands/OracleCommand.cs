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
        var kernel = new Option<string[]>("--kernel")
        {
            Description = "Kernel series to compare with (" + string.Join(", ", OracleKernels.Known) + "; repeat the option or give a comma-separated list); default: every series with recorded traces (--model-only) or unpacked by setup.sh",
        };
        var cmd = new Command("oracle", "Differential check: run mainline scenarios on the model and on real Linux kernels and compare step by step.")
            { files, modelOnly, record, results, timeout, verbose, strict, writeSummary, kernel };
        cmd.SetAction(pr => Execute(pr.GetValue(files) ?? [], pr.GetValue(modelOnly), pr.GetValue(record), pr.GetValue(results),
            pr.GetValue(timeout), pr.GetValue(verbose), pr.GetValue(strict), pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error, pr.GetValue(writeSummary), pr.GetValue(kernel)));
        return cmd;
    }

    public static int Execute(string[] files, bool modelOnly, bool record, string? results, int timeoutS, bool verbose, bool strict, TextWriter w, TextWriter err,
        bool writeSummary = false, string[]? kernels = null)
    {
        if (modelOnly && record) { err.WriteLine("--model-only and --record exclude each other"); return 2; }
        kernels = kernels is { Length: > 0 } ? kernels.SelectMany(k => k.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Distinct().ToArray() : null;
        if (kernels?.Select(OracleKernels.Check).FirstOrDefault(e => e is not null) is { } kerr) { err.WriteLine(kerr); return 2; }
        var (scenarios, errors) = ScenarioInputs.Load(files);
        if (errors.Count > 0) { foreach (var e in errors) err.WriteLine(e); return 2; }
        scenarios = scenarios.Where(s => s.Mainline).ToList();
        if (scenarios.Count == 0) { err.WriteLine("no scenario with mainline: true among the arguments"); return 2; }
        string? repo = OracleSession.RepoRoot();
        string recorded = repo is null ? OracleSession.RecordedDir : Path.Combine(repo, OracleSession.RecordedDir);
        string dir = results ?? (modelOnly || record ? recorded : Path.Combine(OracleKernels.Cache(repo ?? "."), "oracle-runs"));
        IReadOnlyList<string> series;
        if (!modelOnly)
        {
            if (repo is null) { err.WriteLine("cannot find the repository (HugeFault.slnx) for tools/realkernel"); return 2; }
            var releases = OracleSession.RunReal(scenarios, repo, dir, timeoutS, err, kernels);
            if (releases is null) { err.WriteLine("the real-kernel harness could not be set up (tools/realkernel/setup.sh or build-initramfs.sh failed)"); return 1; }
            foreach (var (s, rel) in releases) w.WriteLine($"real kernel {s}: {rel}");
            series = releases.Keys.ToList();
        }
        else
        {
            series = kernels ?? OracleKernels.Recorded(dir);
            if (series.Count == 0) { err.WriteLine($"{dir}: no recorded traces (a folder per kernel series: {string.Join(", ", OracleKernels.Known)}); run with --record"); return 2; }
        }
        var list = scenarios.SelectMany(sc => series.Select(s => OracleSession.CompareRecorded(sc, dir, s))).ToList();
        var kernelsUsed = list.Where(r => r.Status == "compared").Select(r => r.Kernel).Distinct().ToList();
        w.WriteLine($"kernels used for the real traces: {(kernelsUsed.Count == 0 ? "none" : string.Join(", ", kernelsUsed))} (traces in {dir})");
        foreach (var r in list) OracleSession.Print(w, r, verbose);
        if (!modelOnly || writeSummary) OracleSession.WriteSummaries(dir, list);
        foreach (var g in list.GroupBy(r => r.Series))
            w.WriteLine($"kernel {g.Key}: " + Tally(g.ToList()));
        if (series.Count > 1) w.WriteLine("all kernels: " + Tally(list));
        if (list.Any(r => r.Status is "real-failed" or "no-real-trace")) return 1;
        return strict && list.Any(r => r.MismatchedSteps > 0) ? 1 : 0;
    }

    private static string Tally(IReadOnlyList<OracleScenarioResult> list) =>
        $"{list.Count(r => r.Status == "compared")} of {list.Count} scenarios compared; {list.Count(r => r.Status == "compared" && r.MismatchedSteps == 0)} match in every step; "
        + $"{list.Sum(r => r.MatchedSteps)} steps match, {list.Sum(r => r.MismatchedSteps)} differ; expectations pass on Linux in {list.Count(r => r.RealPassed == true)}";
}

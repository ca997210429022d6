using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using HugeFault.Scenarios;

namespace HugeFault.Oracle;

/// <summary>
/// The comparison of one scenario with one kernel series (<see cref="Series"/>, e.g. 6.1; <see cref="Kernel"/> is
/// the release the trace came from). Status: compared | model-only (cannot run on that kernel) | no-real-trace | real-failed.
/// </summary>
public sealed record OracleScenarioResult(string Key, string File, string Title, string Status, string? Reason, string Series, string Kernel,
    bool ModelPassed, IReadOnlyList<string> ModelFailures, IReadOnlyList<StepDiff> Steps, JsonObject? Timing)
{
    public int MatchedSteps => Steps.Count(s => s.Skipped is null && s.Match);
    public int MismatchedSteps => Steps.Count(s => s.Skipped is null && !s.Match);
    public int SkippedSteps => Steps.Count(s => s.Skipped is not null);
    /// <summary>The scenario's expectations hold on the real trace (null if not compared).</summary>
    public bool? RealPassed => Status == "compared" ? Steps.All(s => s.RealFailures.Count == 0) : null;
}

/// <summary>
/// Runs scenarios on the model and compares them with real-kernel traces: recorded ones
/// (<see cref="CompareRecorded"/>) or fresh ones from tools/realkernel (<see cref="RunReal"/>).
/// </summary>
public static class OracleSession
{
    /// <summary>Where recorded real traces live, relative to the repository root.</summary>
    public const string RecordedDir = "tools/realkernel/oracle-results";

    /// <summary>The repository root: the nearest folder upwards holding HugeFault.slnx.</summary>
    public static string? RepoRoot(string? start = null)
    {
        foreach (var s in new[] { start, Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var d = s is null ? null : new DirectoryInfo(s); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "HugeFault.slnx"))) return d.FullName;
        }
        return null;
    }

    /// <summary>
    /// Compares the model's run of <paramref name="sc"/>, following kernel <paramref name="series"/>, with the real
    /// trace <paramref name="traceDir"/>/SERIES/KEY.jsonl.
    /// </summary>
    public static OracleScenarioResult CompareRecorded(Scenario sc, string traceDir, string series)
    {
        sc = sc.ForKernel(OracleKernels.VersionOf(series)); // the model and the expectations of that kernel
        var run = ScenarioRunner.Run(sc);
        string key = OraclePlan.Key(sc);
        var modelFailures = run.Failures.ToList();
        if (OraclePlan.WhyNotReal(sc, OracleKernels.VersionOf(series)) is { } why)
            return new(key, sc.File, sc.Name, "model-only", why, series, "-", run.Passed, modelFailures, [], null);
        string path = Path.Combine(traceDir, series, key + ".jsonl");
        if (!File.Exists(path))
            return new(key, sc.File, sc.Name, "no-real-trace", $"{path} does not exist (run with --record)", series, "-", run.Passed, modelFailures, [], null);
        var lines = File.ReadAllLines(path);
        var real = OracleTraces.FromRealLines(lines, sc);
        var timing = lines.Where(l => l.Contains("\"step\":\"timing\"", StringComparison.Ordinal)).Select(l => JsonNode.Parse(l) as JsonObject).LastOrDefault();
        if (real.Steps.All(s => s.Skipped is not null) && !real.Steps.Any(s => s.Panic))
            return new(key, sc.File, sc.Name, "real-failed", "the guest reported no step", series, real.Kernel, run.Passed, modelFailures, [], timing);
        var model = OracleTraces.FromModel(run);
        return new(key, sc.File, sc.Name, "compared", null, series, real.Kernel, run.Passed, modelFailures, OracleDiff.Compare(sc, model, real), timing);
    }

    /// <summary>
    /// Boots each kernel series of <paramref name="kernels"/> (default: every series setup.sh unpacked) once per
    /// scenario that can run on it (tools/realkernel: setup.sh, build-initramfs.sh with the plans, one run.sh call
    /// with scenario:KEY@SERIES entries) and leaves SERIES/KEY.jsonl + SERIES/KEY.console.log in <paramref name="outDir"/>.
    /// Returns series → kernel release of the kernels available, or null when the harness could not be set up.
    /// </summary>
    public static IReadOnlyDictionary<string, string>? RunReal(IReadOnlyList<Scenario> scenarios, string repo, string outDir, int timeoutS, TextWriter log,
        IReadOnlyList<string>? kernels = null)
    {
        string rk = Path.Combine(repo, "tools", "realkernel");
        string cache = OracleKernels.Cache(repo);
        var env = kernels is null ? null : new Dictionary<string, string> { ["KERNELS"] = string.Join(' ', kernels) };
        if (Sh(Path.Combine(rk, "setup.sh"), [], log, out _, env) != 0) return null;
        var releases = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var s in kernels ?? OracleKernels.InCache(cache))
        {
            string kv = Path.Combine(cache, "kernels", s, "kernel-version");
            if (!File.Exists(kv)) { log.WriteLine($"oracle: kernel {s} is not in {cache}/kernels after setup.sh"); return null; }
            releases[s] = File.ReadAllText(kv).Trim();
        }
        string plans = Path.Combine(cache, "scenarios");
        if (Directory.Exists(plans)) Directory.Delete(plans, true);
        Directory.CreateDirectory(plans);
        var entries = new List<string>();
        foreach (var sc in scenarios)
        {
            string key = OraclePlan.Key(sc);
            var runnable = new List<string>();
            foreach (var s in releases.Keys)
            {
                if (OraclePlan.WhyNotReal(sc, OracleKernels.VersionOf(s)) is { } why) log.WriteLine($"{key} @{s}: model-only ({why})");
                else runnable.Add(s);
            }
            if (runnable.Count == 0) continue;
            var plan = OraclePlan.Build(sc);
            File.WriteAllText(Path.Combine(plans, key + ".json"), plan.ToJsonString());
            File.WriteAllText(Path.Combine(plans, key + ".bootargs"), OraclePlan.BootArgs(sc));
            File.WriteAllText(Path.Combine(plans, key + ".mem"), OraclePlan.GuestMemory(sc));
            File.Copy(sc.File, Path.Combine(plans, key + ".yaml"), true);
            entries.AddRange(runnable.Select(s => $"scenario:{key}@{s}"));
        }
        if (entries.Count == 0) return releases;
        if (Sh(Path.Combine(rk, "build-initramfs.sh"), [], log, out _) != 0) return null;
        Directory.CreateDirectory(outDir);
        var args = new List<string> { "--timeout", timeoutS.ToString(CultureInfo.InvariantCulture), "--out", outDir };
        args.AddRange(entries);
        Sh(Path.Combine(rk, "run.sh"), args, log, out _);
        return releases;
    }

    private static int Sh(string script, IReadOnlyList<string> args, TextWriter log, out string stdout, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        p.BeginErrorReadLine();
        stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode;
    }

    // ---------------------------------------------------------------- results file

    public static JsonObject ResultJson(OracleScenarioResult r) => new()
    {
        ["scenario"] = r.Key, ["file"] = r.File.Replace('\\', '/'), ["title"] = r.Title, ["status"] = r.Status, ["reason"] = r.Reason,
        ["series"] = r.Series, ["kernel"] = r.Kernel, ["model_passed"] = r.ModelPassed, ["real_passed"] = r.RealPassed,
        ["matched_steps"] = r.MatchedSteps, ["mismatched_steps"] = r.MismatchedSteps, ["skipped_steps"] = r.SkippedSteps,
        ["timing"] = r.Timing?.DeepClone(),
        ["steps"] = new JsonArray(r.Steps.Select(s => (JsonNode)new JsonObject
        {
            ["i"] = s.Index, ["op"] = s.Op, ["as"] = s.As, ["skipped"] = s.Skipped, ["match"] = s.Match,
            ["mismatches"] = new JsonArray(s.Mismatches.Select(f => (JsonNode)new JsonObject { ["field"] = f.Field, ["model"] = f.Model, ["real"] = f.Real }).ToArray()),
            ["real_expectation_failures"] = new JsonArray(s.RealFailures.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray()),
        }).ToArray()),
    };

    /// <summary>
    /// Writes DIR/SERIES/summary.json for each kernel series among <paramref name="results"/>; entries of scenarios
    /// not in <paramref name="results"/> that are already there are kept.
    /// </summary>
    public static void WriteSummaries(string dir, IEnumerable<OracleScenarioResult> results)
    {
        foreach (var g in results.GroupBy(r => r.Series)) WriteSummary(Path.Combine(dir, g.Key), g);
    }

    /// <summary>Writes DIR/summary.json; entries of scenarios not in <paramref name="results"/> that are already there are kept.</summary>
    public static void WriteSummary(string dir, IEnumerable<OracleScenarioResult> results)
    {
        var entries = new SortedDictionary<string, JsonNode>(StringComparer.Ordinal);
        string path = Path.Combine(dir, "summary.json");
        if (File.Exists(path) && JsonNode.Parse(File.ReadAllText(path))?["scenarios"] is JsonArray old)
            foreach (var e in old) if (e?["scenario"]?.GetValue<string>() is { } k) entries[k] = e.DeepClone();
        foreach (var r in results) entries[r.Key] = ResultJson(r);
        var kernels = entries.Values.Where(e => (string?)e["status"] == "compared").Select(e => (string?)e["kernel"]).Distinct().ToList();
        var o = new JsonObject
        {
            ["kernel"] = string.Join(", ", kernels),
            ["scenarios"] = new JsonArray(entries.Values.ToArray()),
        };
        Directory.CreateDirectory(dir);
        File.WriteAllText(path + ".tmp", o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.Move(path + ".tmp", path, true);
    }

    /// <summary>Plain-text report: per scenario a header, then per step match/mismatch with both values side by side.</summary>
    public static void Print(TextWriter w, OracleScenarioResult r, bool verbose)
    {
        string verdict = r.Status switch
        {
            "compared" => $"{r.MatchedSteps} steps match, {r.MismatchedSteps} differ, {r.SkippedSteps} skipped; expectations on Linux: {(r.RealPassed == true ? "pass" : "FAIL")}; on the model: {(r.ModelPassed ? "pass" : "FAIL")}",
            _ => $"{r.Status}: {r.Reason}",
        };
        w.WriteLine($"== {r.Key} @{r.Series} [{r.Kernel}] {verdict}");
        foreach (var s in r.Steps)
        {
            string head = $"  {s.Index,3} {s.Op,-16} {s.As ?? "",-2}";
            if (s.Skipped is not null)
            {
                w.WriteLine($"{head} skipped ({s.Skipped})");
                foreach (var x in s.RealFailures) w.WriteLine($"        expectation fails on Linux: {x}");
                continue;
            }
            w.WriteLine($"{head} {(s.Match ? "match" : "MISMATCH")}");
            foreach (var f in verbose ? s.Fields : s.Mismatches)
            {
                if (f.Match) w.WriteLine($"        {f.Field,-18} {f.Model}");
                else { w.WriteLine($"        {f.Field,-18} model: {f.Model}"); w.WriteLine($"        {"",-18} real:  {f.Real}"); }
            }
            foreach (var x in s.RealFailures) w.WriteLine($"        expectation fails on Linux: {x}");
        }
    }
}

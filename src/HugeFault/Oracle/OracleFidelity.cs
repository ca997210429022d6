using System.Globalization;
using System.Text;
using HugeFault.Scenarios;

namespace HugeFault.Oracle;

/// <summary>
/// One line of the fidelity table: a folder of scenarios (the mainline conformance cases, or one peer suite) on one
/// kernel series (or, for a proposal's own selftests, under its policy on the model). Assertions are single expected
/// values (<see cref="OracleFidelity.Assertions"/>).
/// </summary>
public sealed record FidelityRow(string Suite, string Kernel, int Files, int InRange, int Ran, int Matched, int Steps,
    int Assertions, int PassOnModel, int CheckedOnLinux, int PassOnLinux);

/// <summary>
/// Counts, from the scenario files and the recorded real traces, how many scenarios ran and matched on each kernel
/// and how many assertions each suite carries and passes (the README's fidelity table).
/// </summary>
public static class OracleFidelity
{
    /// <summary>The folders counted, relative to the repository root: the conformance cases, then every peer suite.</summary>
    public static IReadOnlyList<string> Suites(string repo) =>
        new[] { "scenarios/conformance/mainline" }
            .Concat(Directory.GetDirectories(Path.Combine(repo, "scenarios", "peers")).Select(d => "scenarios/peers/" + Path.GetFileName(d)).Order(StringComparer.Ordinal))
            .ToList();

    /// <summary>
    /// The number of expected values in <paramref name="e"/>: a return value (or rule), an errno (or list), each expected
    /// signal (an empty list, "no signal", is one), each counter, each hugepages field, each log line that must or must
    /// not appear, data, outcome, done, panic, each page-flag check, a pfn check, each process's death or life, and the
    /// model-side trace/guest/migration details.
    /// </summary>
    public static int Assertions(Expect e) => LinuxAssertions(e)
        + (e.Trace?.Count ?? 0) + (e.Alive?.Count ?? 0) + (e.Guest?.Count ?? 0) + (e.Migration?.Count ?? 0)
        + (e.MemInfo?.Keys.Count(k => k == "PageTables") ?? 0) + (e.CounterRules?.Keys.Count(k => k == "PageTables") ?? 0);

    /// <summary>The assertions <see cref="OracleExpect"/> can check on a real trace (all but trace, alive, guest, migration, PageTables).</summary>
    public static int LinuxAssertions(Expect e)
    {
        int n = 0;
        if (e.Ret is not null || e.RetRule is not null) n++;
        if (e.Errno is not null || e.ErrnoOneOf is not null) n++;
        if (e.Signals is { } s) n += Math.Max(1, s.Count);
        n += e.MemInfo?.Keys.Count(k => k != "PageTables") ?? 0;
        n += e.HugePages?.Values.Sum(h => (h.Total is null ? 0 : 1) + (h.Free is null ? 0 : 1) + (h.Resv is null ? 0 : 1) + (h.Surp is null ? 0 : 1)) ?? 0;
        n += (e.Log?.Count ?? 0) + (e.NoLog?.Count ?? 0);
        if (e.Data is not null) n++;
        if (e.Outcome is not null || e.OutcomeOneOf is not null) n++;
        if (e.Panic is not null) n++;
        if (e.Done is not null || e.DoneRule is not null) n++;
        n += e.CounterRules?.Keys.Count(k => k != "PageTables") ?? 0;
        n += e.PageFlags?.Count ?? 0;
        if (e.Pfn is not null) n++;
        n += e.Dead?.Count ?? 0;
        return n;
    }

    /// <summary>
    /// Every row: per suite, one per recorded kernel for mainline scenarios (in range, compared with the recorded trace),
    /// and one "model, policy P" row per policy for the others.
    /// </summary>
    public static List<FidelityRow> Rows(string repo)
    {
        string recorded = Path.Combine(repo, OracleSession.RecordedDir);
        var series = OracleKernels.Recorded(recorded);
        var rows = new List<FidelityRow>();
        foreach (var suite in Suites(repo))
        {
            var scenarios = Directory.EnumerateFiles(Path.Combine(repo, suite), "*.yaml").Order(StringComparer.Ordinal)
                .Select(f => ScenarioParser.ParseFile(f).Scenario ?? throw new InvalidDataException($"{f} does not parse")).ToList();
            foreach (var k in series)
            {
                var v = OracleKernels.VersionOf(k);
                var r = new Acc();
                foreach (var sc in scenarios.Where(s => s.Mainline))
                {
                    r.Files++;
                    if (!sc.Kernel.Contains(v)) continue;
                    r.InRange++;
                    var res = OracleSession.CompareRecorded(sc, recorded, k);
                    var steps = sc.ForKernel(v).Steps;
                    int all = steps.Sum(s => s.Expect is { } e ? Assertions(e) : 0);
                    r.Assertions += all;
                    if (res.ModelPassed) r.PassOnModel += all;
                    if (res.Status != "compared") continue;
                    r.Ran++;
                    if (res.MismatchedSteps == 0) r.Matched++;
                    r.Steps += res.MatchedSteps + res.MismatchedSteps;
                    foreach (var d in res.Steps)
                    {
                        if (steps.FirstOrDefault(s => s.Index == d.Index)?.Expect is not { } e) continue;
                        int c = d.Skipped is null ? LinuxAssertions(e) : e.Dead?.Count ?? 0; // a step Linux could not run: deaths only
                        r.Checked += c;
                        if (d.RealFailures.Count == 0) r.PassOnLinux += c;
                    }
                }
                if (r.Files > 0) rows.Add(r.Row(suite, k));
            }
            foreach (var g in scenarios.Where(s => !s.Mainline).GroupBy(s => s.Host.Policy).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var r = new Acc();
                foreach (var sc in g)
                {
                    r.Files++; r.InRange++;
                    var run = ScenarioRunner.Run(sc);
                    int all = sc.Steps.Sum(s => s.ExpectFor(sc.Host.KernelVersion) is { } e ? Assertions(e) : 0);
                    r.Assertions += all;
                    if (run.Passed) r.PassOnModel += all;
                }
                rows.Add(r.Row(suite, "model, policy " + g.Key));
            }
        }
        return rows;
    }

    private sealed class Acc
    {
        public int Files, InRange, Ran, Matched, Steps, Assertions, PassOnModel, Checked, PassOnLinux;
        public FidelityRow Row(string suite, string kernel) => new(suite, kernel, Files, InRange, Ran, Matched, Steps, Assertions, PassOnModel, Checked, PassOnLinux);
    }

    /// <summary>The rows as a Markdown table (what the README's fidelity section shows between its markers).</summary>
    public static string Markdown(IEnumerable<FidelityRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| scenarios | kernel | files (in range) | ran on Linux | match in every step | steps compared | assertions | pass on the model | checked on Linux | pass on Linux |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        static string N(int x) => x.ToString(CultureInfo.InvariantCulture);
        var list = rows.ToList();
        // one total per kernel over the suites that run on Linux
        list.AddRange(list.Where(r => !r.Kernel.StartsWith("model", StringComparison.Ordinal)).GroupBy(r => r.Kernel).Select(g => new FidelityRow("all", g.Key,
            g.Sum(r => r.Files), g.Sum(r => r.InRange), g.Sum(r => r.Ran), g.Sum(r => r.Matched), g.Sum(r => r.Steps), g.Sum(r => r.Assertions),
            g.Sum(r => r.PassOnModel), g.Sum(r => r.CheckedOnLinux), g.Sum(r => r.PassOnLinux))).ToList());
        foreach (var r in list)
        {
            bool model = r.Kernel.StartsWith("model", StringComparison.Ordinal);
            string files = r.InRange == r.Files ? N(r.Files) : $"{N(r.Files)} ({N(r.InRange)})";
            string suite = r.Suite == "all" ? "**all of the above**" : $"`{r.Suite}/`";
            sb.AppendLine(model
                ? $"| {suite} | {r.Kernel} | {files} | - | - | - | {N(r.Assertions)} | {N(r.PassOnModel)} | - | - |"
                : $"| {suite} | {r.Kernel} | {files} | {N(r.Ran)} | {N(r.Matched)} | {N(r.Steps)} | {N(r.Assertions)} | {N(r.PassOnModel)} | {N(r.CheckedOnLinux)} | {N(r.PassOnLinux)} |");
        }
        return sb.ToString();
    }
}

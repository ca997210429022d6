using System.Diagnostics;

namespace HugeFault.Tests.Fuzz;

/// <summary>
/// The fuzz harness (<see cref="InputFuzzer"/>): a small fixed-seed slice in the suite, and the long mode outside it
/// (<c>tools/fuzz/run.sh N</c>, or HUGEFAULT_FUZZ_N=N with HUGEFAULT_FUZZ_SEED and HUGEFAULT_FUZZ_OUT=dir).
/// </summary>
public class InputFuzzTests
{
    private static (List<FuzzOutcome> Outs, string Summary) Campaign(ulong seed, long first, long count, string dir)
    {
        Directory.CreateDirectory(dir);
        var fuzzer = new InputFuzzer(seed);
        var outs = new List<FuzzOutcome>();
        var sw = Stopwatch.StartNew();
        int hangs = 0;
        for (long i = first; i < first + count && hangs < 3; i++) // a hung input keeps its thread: stop after three
        {
            var o = InputFuzzer.Run(fuzzer.Generate(i), dir);
            outs.Add(o.Finding ? o : o with { Input = o.Input with { Text = "", Companion = null } }); // a finding's input is written out below; the rest need not stay in memory
            if (o.Verdict.StartsWith("hang", StringComparison.Ordinal)) hangs++;
            if ((i - first + 1) % 1000 == 0) // a campaign stopped part-way still says how far it got
                File.AppendAllText(Path.Combine(dir, "progress.txt"), $"seed {seed}: inputs {first}..{i} done in {sw.Elapsed.TotalSeconds:0} s, findings {outs.Count(x => x.Finding)}\n");
            if (o.Finding) File.WriteAllText(Path.Combine(dir, $"finding-{i}.txt"), $"seed {seed} input {i}: {o.Verdict}\n{o.Input.Origin}: {o.Input.Mutation}\nargs: {string.Join(' ', o.Input.ExtraArgs)}\n{o.FirstErrorLine}\n---\n{o.Input.Text}");
            if (o.Finding && o.Input.Companion is { } other) File.WriteAllText(Path.Combine(dir, $"finding-{i}-other.json"), other); // the shard merged beside it
        }
        return (outs, InputFuzzer.Summary(outs, sw.Elapsed, Process.GetCurrentProcess().PeakWorkingSet64));
    }

    private static string Findings(IEnumerable<FuzzOutcome> outs) =>
        string.Join("\n", outs.Where(o => o.Finding).Take(10).Select(o => $"input {o.Input.Index} ({o.Input.Origin}: {o.Input.Mutation}): {o.Verdict} {o.FirstErrorLine}"));

    [Fact]
    public void A_fixed_slice_of_mutated_scenarios_exits_0_1_or_2_without_a_stack_trace_within_the_time_limit()
    {
        var (outs, summary) = Campaign(seed: 12, first: 0, count: 150, Path.Combine(Path.GetTempPath(), $"hf-fuzz-{Environment.ProcessId}"));
        TestContext.Current.SendDiagnosticMessage(summary);
        Assert.True(outs.All(o => !o.Finding), summary + "\n" + Findings(outs));
        Assert.Contains(outs, o => o.Exit == 2); // the mutations reach the validation...
        Assert.Contains(outs, o => o.Exit is 0 or 1); // ...and past it, into the model
        foreach (var t in Enum.GetValues<FuzzTarget>()) Assert.Contains(outs, o => o.Input.Target == t); // scenarios, fleet configs and tampered shards
        Assert.Contains(outs, o => o.Input.Target == FuzzTarget.ShardMerge && o.Exit == 2); // a tampered shard is refused...
        Assert.Contains(outs, o => o.Input.Target == FuzzTarget.FleetConfig && o.Exit == 0); // ...a mutated fleet config still runs when valid
    }

    [Fact]
    public void Long_mode()
    {
        if (!long.TryParse(Environment.GetEnvironmentVariable("HUGEFAULT_FUZZ_N"), out long n) || n <= 0)
            Assert.Skip("the long fuzz campaign runs outside the suite: tools/fuzz/run.sh N (HUGEFAULT_FUZZ_N unset)");
        ulong seed = ulong.TryParse(Environment.GetEnvironmentVariable("HUGEFAULT_FUZZ_SEED"), out var s) ? s : 1;
        long first = long.TryParse(Environment.GetEnvironmentVariable("HUGEFAULT_FUZZ_FIRST"), out var f) ? f : 0;
        string dir = Environment.GetEnvironmentVariable("HUGEFAULT_FUZZ_OUT") is { Length: > 0 } d ? d : Path.Combine(Path.GetTempPath(), "hf-fuzz-long");
        var (outs, summary) = Campaign(seed, first, n, dir);
        File.WriteAllText(Path.Combine(dir, "summary.txt"), $"seed {seed}, inputs {first}..{first + n - 1}: {summary}\n");
        Assert.True(outs.All(o => !o.Finding), summary + "\n" + Findings(outs));
    }
}

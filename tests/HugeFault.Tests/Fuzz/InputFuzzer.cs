using System.Diagnostics;
using System.Text.RegularExpressions;
using CsCheck;
using HugeFault.Policies;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Fuzz;

/// <summary>What an input is fed to: <c>hugefault run</c>, <c>hugefault fleet</c>, or <c>hugefault fleet merge</c>.</summary>
public enum FuzzTarget { Scenario, FleetConfig, ShardMerge }

/// <summary>
/// One generated input: what the CLI is asked to do, and the file it reads (for <see cref="FuzzTarget.ShardMerge"/>,
/// the tampered shard; <paramref name="Companion"/> is the other shard file of the merge, untouched, or null).
/// </summary>
public sealed record FuzzInput(long Index, string Origin, string Mutation, string Text, string[] ExtraArgs, FuzzTarget Target = FuzzTarget.Scenario, string? Companion = null);

/// <summary>What one input did: its exit code, whether that is fine, and what it cost.</summary>
public sealed record FuzzOutcome(FuzzInput Input, int Exit, string Verdict, double Seconds, double CpuSeconds, long AllocatedBytes, string FirstErrorLine)
{
    public bool Finding => Verdict != "ok";
}

/// <summary>
/// The project's own fuzz harness (issue 12): syntactic and semantic mutations of the built-in scenarios (extreme
/// values that still look valid, wrong kinds, swapped enums, dropped keys, steps repeated hundreds of times, policy
/// and policy_params changes), each run through the CLI (<c>hugefault run</c>, in process). An outcome is fine when
/// the exit code is 0, 1 or 2, nothing says "internal error" or shows a stack trace, and it takes at most
/// <see cref="TimeLimit"/>; anything else (exit 70, an exception escaping, out of memory, a hang) is a finding.
/// Input i is a pure function of (seed, i), so a finding is re-run from its index alone.
/// A quarter of the inputs are mutated fleet configs (through <c>hugefault fleet</c>, bounded servers) and an eighth
/// tampered shard outputs (through <c>hugefault fleet merge</c>); HUGEFAULT_FUZZ_FLEET=0 leaves both out.
/// "Hang" is measured in CPU time, so that a machine shared with other jobs does not turn a slow input into a
/// finding: an input that has used <see cref="TimeLimit"/> of this process's CPU (on an idle machine: of wall time)
/// is one; <see cref="WallLimit"/> bounds the wall time whatever the load.
/// </summary>
public sealed class InputFuzzer(ulong seed)
{
    public static readonly TimeSpan TimeLimit = TimeSpan.FromSeconds(20);
    public static readonly TimeSpan WallLimit = TimeSpan.FromMinutes(10);
    private static readonly string[] Names = BuiltinScenarios.Names.ToArray();

    /// <summary>Values that pass a careless check: signs, 32/64-bit edges, sizes that wrap, floats at their limits, wrong kinds.</summary>
    private static readonly string[] Extremes =
    [
        "0", "-1", "1", "1G-2G", "0-4K", "4K-", "0x7fffffffffffffff", "0x8000000000000000", "0xffffffffffffffff", "18446744073709551616",
        "99999999999", "4294967296", "2147483648", "-2147483649", "1e308", "-1e308", "1e-300", "NaN", "Infinity", "1e6", "1e9", "1e12",
        "64T", "127T", "128T", "1T", "16G", "3M", "1.5K", "0.5", "", "~", "null", "true", "[a, b]", "{x: 1}", "\"\"", "$nosuch", "$p+99999999999",
        "p1@-1", "p1@1G-2G", "A", "99999999999999999999999999", "\"6.1\"", "\"999.0\"", "1.2.3.4.5", "-0", "+5", "0x", "1KK", "1Gi",
    ];

    private static readonly Regex KeyValue = new(@"(?<key>[A-Za-z_][\w.]*): (?<value>[^,{}\[\]\n]+)", RegexOptions.Compiled);
    private static readonly Regex JsonKeyValue = new(@"""(?<key>[A-Za-z_]\w*)"": ?(?<value>[^,{}\[\]\n]+)", RegexOptions.Compiled);

    /// <summary>Input <paramref name="i"/>: a built-in scenario with one to four mutations.</summary>
    public FuzzInput Generate(long i)
    {
        var rng = new PCG((uint)(seed & 0x7fffffff), (ulong)i * 0x9E3779B97F4A7C15UL + seed);
        if (FleetTargets)
            switch (rng.Next(8))
            {
                case 0 or 1: return GenerateFleet(i, rng);
                case 2: return GenerateShard(i, rng);
            }
        string name = Names[rng.Next((uint)Names.Length)];
        string text = BuiltinScenarios.Read(name);
        var done = new List<string>();
        int n = 1 + (int)rng.Next(4);
        for (int k = 0; k < n; k++) text = Mutate(text, rng, done);
        string[] extra = rng.Next(8) == 0 ? ["--policy", RecoveryPolicies.Names[(int)rng.Next((uint)RecoveryPolicies.Names.Count)]] : [];
        return new FuzzInput(i, name, string.Join("; ", done), text, extra);
    }

    private static string Mutate(string text, PCG rng, List<string> done, Regex? keyValue = null)
    {
        var lines = text.Split('\n').ToList();
        var kvs = (keyValue ?? KeyValue).Matches(text).ToList();
        switch (rng.Next(10))
        {
            case 0 or 1 or 2 when kvs.Count > 0: // an extreme value
            {
                var m = kvs[(int)rng.Next((uint)kvs.Count)];
                var v = Extremes[rng.Next((uint)Extremes.Length)];
                done.Add($"{m.Groups["key"].Value}: {v}");
                var g = m.Groups["value"];
                return text[..g.Index] + v + text[(g.Index + g.Length)..];
            }
            case 3 when kvs.Count > 1: // another key's value (enums in the wrong place, names of the wrong kind)
            {
                var m = kvs[(int)rng.Next((uint)kvs.Count)];
                var v = kvs[(int)rng.Next((uint)kvs.Count)].Groups["value"].Value;
                done.Add($"{m.Groups["key"].Value}: {v} (swapped)");
                var g = m.Groups["value"];
                return text[..g.Index] + v + text[(g.Index + g.Length)..];
            }
            case 4 when kvs.Count > 0: // a key dropped
            {
                var m = kvs[(int)rng.Next((uint)kvs.Count)];
                done.Add($"drop {m.Groups["key"].Value}");
                return text[..m.Index] + text[(m.Index + m.Length)..];
            }
            case 5: // a step line repeated (up to a few hundred times: the error cap, run time)
            {
                var steps = lines.Select((l, ix) => (l, ix)).Where(x => x.l.StartsWith("  - ", StringComparison.Ordinal)).ToList();
                if (steps.Count == 0) break;
                var (l, ix) = steps[(int)rng.Next((uint)steps.Count)];
                int times = (int)rng.Next(300) + 2;
                done.Add($"repeat line {ix + 1} x{times}");
                lines.InsertRange(ix, Enumerable.Repeat(l, times));
                return string.Join('\n', lines);
            }
            case 6: // the host: policy, params, sizes
            {
                int h = lines.FindIndex(l => l.StartsWith("host:", StringComparison.Ordinal));
                if (h < 0) break;
                var pol = RecoveryPolicies.Names[(int)rng.Next((uint)RecoveryPolicies.Names.Count)];
                var info = RecoveryPolicies.Describe(pol);
                var p = info.Parameters[(int)rng.Next((uint)info.Parameters.Count)];
                string v = rng.Next(2) == 0 ? Extremes[rng.Next((uint)Extremes.Length)] : RecoveryPolicies.Names[(int)rng.Next((uint)RecoveryPolicies.Names.Count)];
                string mem = new[] { "8G", "1G", "64T", "65T", "3G", "0G" }[rng.Next(6)];
                string hp = new[] { "{1G: 2}", "{1G: 60000}", "{2M: 99999999}", "{1G: -1}", "{2M: 8}" }[rng.Next(5)];
                done.Add($"host policy {pol} {p.Name}: {v}, memory {mem}, hugepages {hp}");
                lines[h] = $"host: {{memory: {mem}, hugepages: {hp}, overcommit: {{2M: {Extremes[rng.Next((uint)Extremes.Length)]}}}, policy: {pol}, policy_params: {{{p.Name}: {v}}}}}";
                // a block-style host is followed by indented keys: drop them so the flow mapping stands alone
                while (h + 1 < lines.Count && lines[h + 1].StartsWith("  ", StringComparison.Ordinal) && !lines[h + 1].TrimStart().StartsWith('-')) lines.RemoveAt(h + 1);
                return string.Join('\n', lines);
            }
            default: // a syntactic edit: a character removed, inserted or replaced, a line removed or duplicated
            {
                var e = new HugeFault.Tests.Scenarios.ScenarioFuzzTests.Edit((int)rng.Next(5), (int)rng.Next(1 << 20), (int)rng.Next(1 << 20));
                done.Add(e.ToString());
                return e.Apply(text);
            }
        }
        return text;
    }

    private static readonly Lazy<string> FleetExample = new(() =>
    {
        // HUGEFAULT_FUZZ_FLEET=PATH: that fleet config; =1: the annotated config of docs/fleet.md (its first yaml block)
        var given = Environment.GetEnvironmentVariable("HUGEFAULT_FUZZ_FLEET");
        if (given is { Length: > 1 } && File.Exists(given)) return File.ReadAllText(given);
        var doc = File.ReadAllText(Path.Combine(HugeFault.Tests.Cli.CliProcess.RepoRoot(), "docs", "fleet.md"));
        int a = doc.IndexOf("```yaml\n", StringComparison.Ordinal) + 8;
        return doc[a..doc.IndexOf("```", a, StringComparison.Ordinal)];
    });

    private static FuzzInput GenerateFleet(long i, PCG rng)
    {
        var done = new List<string>();
        string text = FleetExample.Value;
        int n = 1 + (int)rng.Next(3);
        for (int k = 0; k < n; k++) text = Mutate(text, rng, done);
        return new FuzzInput(i, "docs/fleet.md example", string.Join("; ", done), text, [], FuzzTarget.FleetConfig);
    }

    /// <summary>Two shards (0/2 and 1/2) of a small study of the fleet example, as <c>fleet --json --shard</c> prints them.</summary>
    private static readonly Lazy<string[]> Shards = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("hf-fuzz-shards-").FullName;
        var cfg = Path.Combine(dir, "fleet.yaml");
        File.WriteAllText(cfg, FleetExample.Value);
        var shards = new string[2];
        for (int k = 0; k < 2; k++)
        {
            var o = new StringWriter();
            int rc = HugeFault.Cli.Program.Run(["fleet", cfg, "--servers", "200", "--years", "0.2", "--threads", "1", "--shard", $"{k}/2", "--json"], o, new StringWriter(), new Dictionary<string, string>());
            if (rc != 0) throw new InvalidOperationException($"the fleet example did not run (exit {rc}): the shard inputs need it");
            shards[k] = o.ToString();
        }
        Directory.Delete(dir, recursive: true);
        return shards;
    });

    /// <summary>
    /// A tampered shard set for <c>fleet merge</c>: one shard's JSON mutated (values, keys, syntax), and the other
    /// shard, the same shard again, or nothing beside it.
    /// </summary>
    private static FuzzInput GenerateShard(long i, PCG rng)
    {
        var done = new List<string>();
        int which = (int)rng.Next(2);
        string text = Shards.Value[which];
        int n = 1 + (int)rng.Next(3);
        for (int k = 0; k < n; k++) text = Mutate(text, rng, done, JsonKeyValue);
        string? companion = rng.Next(4) switch { 0 => null, 1 => Shards.Value[which], _ => Shards.Value[1 - which] };
        done.Add(companion is null ? "alone" : companion == Shards.Value[which] ? "beside itself untampered" : "beside the other shard");
        string[] extra = rng.Next(3) == 0 ? ["--json"] : rng.Next(2) == 0 ? ["--partial"] : [];
        return new FuzzInput(i, $"fleet shard {which}/2", string.Join("; ", done), text, extra, FuzzTarget.ShardMerge, companion);
    }

    /// <summary>Runs one input through the CLI in this process, bounded by <see cref="TimeLimit"/> of CPU time.</summary>
    public static FuzzOutcome Run(FuzzInput input, string dir)
    {
        var path = Path.Combine(dir, input.Target == FuzzTarget.ShardMerge ? $"fuzz-{input.Index}.json" : $"fuzz-{input.Index}.yaml");
        File.WriteAllText(path, input.Text);
        string? companion = input.Companion is null ? null : Path.Combine(dir, $"fuzz-{input.Index}-other.json");
        if (companion is not null) File.WriteAllText(companion, input.Companion);
        int exit = -1; string verdict = "ok"; long alloc = 0;
        var stdout = new StringWriter(); var stderr = new StringWriter();
        string[] args = input.Target switch
        {
            FuzzTarget.FleetConfig => ["fleet", path, "--servers", "200", "--years", "0.2", "--threads", "1"],
            FuzzTarget.ShardMerge => ["fleet", "merge", path, .. companion is null ? Array.Empty<string>() : [companion], .. input.ExtraArgs],
            _ => ["run", "--summary", .. input.ExtraArgs, path],
        };
        var sw = Stopwatch.StartNew();
        int tid = 0;
        TimeSpan? endCpu = null;
        var worker = new Thread(() =>
        {
            tid = ThreadCpu.CurrentThreadId();
            long before = GC.GetAllocatedBytesForCurrentThread();
            try { exit = HugeFault.Cli.Program.Run(args, stdout, stderr, new Dictionary<string, string>()); }
            catch (OutOfMemoryException) { verdict = "abort: out of memory"; }
            catch (Exception e) { verdict = $"exception escaped: {e.GetType().Name}: {e.Message}"; }
            alloc = GC.GetAllocatedBytesForCurrentThread() - before;
            endCpu = ThreadCpu.Of(tid);
        }, 256 << 20) { IsBackground = true };
        worker.Start();
        bool finished;
        TimeSpan cpu = TimeSpan.Zero;
        do
        {
            finished = worker.Join(TimeSpan.FromMilliseconds(250));
            if (!finished) cpu = ThreadCpu.Of(Volatile.Read(ref tid)) ?? sw.Elapsed; // without /proc: wall time
        } while (!finished && cpu < TimeLimit && sw.Elapsed < WallLimit);
        double secs = sw.Elapsed.TotalSeconds;
        if (finished) cpu = endCpu ?? sw.Elapsed;
        string err = stderr.ToString(), @out = stdout.ToString();
        if (!finished) verdict = $"hang: not done after {cpu.TotalSeconds:0} s of CPU ({secs:0} s wall)";
        else if (verdict == "ok" && exit is not (0 or 1 or 2)) verdict = $"exit {exit}";
        else if (verdict == "ok" && (err.Contains("internal error", StringComparison.Ordinal) || Regex.IsMatch(err + @out, @"^\s+at \S+\(", RegexOptions.Multiline)))
            verdict = "stack trace or internal error in the output";
        if (finished)
        {
            File.Delete(path);
            if (companion is not null) File.Delete(companion);
        }
        string first = err.Split('\n').FirstOrDefault(l => l.Length > 0) ?? "";
        return new FuzzOutcome(input, exit, verdict, secs, cpu.TotalSeconds, alloc, first.Replace(path, Path.GetFileName(path)));
    }

    /// <summary>
    /// Fleet configs (docs/fleet.md's annotated example, or HUGEFAULT_FUZZ_FLEET=PATH) and shard outputs are fuzzed
    /// unless HUGEFAULT_FUZZ_FLEET=0.
    /// </summary>
    public static bool FleetTargets => Environment.GetEnvironmentVariable("HUGEFAULT_FUZZ_FLEET") != "0";

    /// <summary>A one-paragraph summary: inputs, exits by code, findings by kind, worst time and allocation.</summary>
    public static string Summary(IReadOnlyList<FuzzOutcome> outs, TimeSpan wall, long peakRss)
    {
        var exits = string.Join(", ", outs.GroupBy(o => o.Exit).OrderBy(g => g.Key).Select(g => $"exit {g.Key}: {g.Count()}"));
        var findings = outs.Where(o => o.Finding).GroupBy(o => o.Verdict.Split(':')[0]).Select(g => $"{g.Key}: {g.Count()}").ToList();
        var slowest = outs.MaxBy(o => o.CpuSeconds)!;
        var targets = string.Join(", ", outs.GroupBy(o => o.Input.Target).OrderBy(g => g.Key).Select(g => $"{g.Key}: {g.Count()}"));
        var hungriest = outs.MaxBy(o => o.AllocatedBytes)!;
        return $"{outs.Count} inputs ({targets}) in {wall.TotalSeconds:0} s; {exits}; findings: {(findings.Count == 0 ? "none" : string.Join(", ", findings))} "
            + $"(internal errors {outs.Count(o => o.Verdict.StartsWith("exit 70", StringComparison.Ordinal) || o.Verdict.StartsWith("stack", StringComparison.Ordinal) || o.Verdict.StartsWith("exception", StringComparison.Ordinal))}, "
            + $"aborts {outs.Count(o => o.Verdict.StartsWith("abort", StringComparison.Ordinal))}, hangs {outs.Count(o => o.Verdict.StartsWith("hang", StringComparison.Ordinal))}); "
            + $"slowest {slowest.CpuSeconds:0.00} s of CPU, {slowest.Seconds:0.00} s wall (input {slowest.Input.Index}: {slowest.Input.Origin}), most allocated {hungriest.AllocatedBytes / 1e6:0} MB "
            + $"(input {hungriest.Input.Index}: {hungriest.Input.Origin}); peak RSS {peakRss / 1e6:0} MB";
    }
}

/// <summary>The CPU time one thread has used, from /proc/self/task/TID/stat (utime + stime), so a run's cost is not its wall time on a shared machine.</summary>
internal static class ThreadCpu
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();

    public static int CurrentThreadId()
    {
        try { return OperatingSystem.IsLinux() ? GetTid() : 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return 0; }
    }

    /// <summary>Null when the thread's stat cannot be read (not Linux, or the thread has exited).</summary>
    public static TimeSpan? Of(int tid)
    {
        if (tid <= 0) return null;
        try
        {
            var stat = File.ReadAllText($"/proc/self/task/{tid}/stat");
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // fields after "pid (comm) ": state is f[0], utime field 14 is f[11]
            long ticks = long.Parse(f[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(f[12], System.Globalization.CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
        }
        catch (IOException) { return null; }
    }
}

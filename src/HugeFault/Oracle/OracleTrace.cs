using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using HugeFault.Scenarios;

namespace HugeFault.Oracle;

/// <summary>A signal in normalized form: receiver, names, si_addr as mapping+offset, lsb.</summary>
public sealed record OracleSignal(string To, string Signo, string SiCode, string SiAddr, int SiAddrLsb)
{
    public override string ToString() => $"{To} {Signo} {SiCode} {SiAddr} lsb={SiAddrLsb}";
}

/// <summary>
/// One step of a run, model or real, in the form both sides can produce: return value and errno,
/// signals, kernel log lines, pool counters after the step, access outcome, data check.
/// </summary>
public sealed record OracleStep(int Index, string Op, string? As)
{
    public string? Skipped { get; init; }
    /// <summary>The step's own process died during it (the runner saw it go): no return value or access outcome, but
    /// signals to others, deaths, log and counters are compared and the step's expectations other than ret/errno/
    /// outcome/done/data are checked.</summary>
    public bool Died { get; init; }
    public long? Ret { get; init; }
    public string? Errno { get; init; }
    public IReadOnlyList<OracleSignal> Signals { get; init; } = [];
    public IReadOnlyList<string> Log { get; init; } = [];
    /// <summary>HugePages_Total/Free/Rsvd/Surp (2 MiB, as /proc/meminfo shows them), HardwareCorrupted (kB), 1G.total/free/resv/surp.</summary>
    public IReadOnlyDictionary<string, long> Counters { get; init; } = new Dictionary<string, long>();
    public string? Outcome { get; init; }
    public long? Done { get; init; }
    /// <summary>null = nothing checked; otherwise the number of 64-byte lines that differ from the expected pattern.</summary>
    public long? DataMismatches { get; init; }
    public bool Panic { get; init; }
    /// <summary>The panic message ("Kernel panic - not syncing: …") when <see cref="Panic"/>.</summary>
    public string? PanicText { get; init; }
    /// <summary>Processes that died during the step: name → "SIGBUS", "SIGKILL", "exit".</summary>
    public IReadOnlyDictionary<string, string> Deaths { get; init; } = new Dictionary<string, string>();
    /// <summary>kpageflags after the step for the pfns the step's expectations name ("$x+5" → flags).</summary>
    public IReadOnlyDictionary<string, ulong> PageFlags { get; init; } = new Dictionary<string, ulong>();
}

/// <summary>A whole run in normalized form.</summary>
public sealed record OracleTrace(string Source, string Kernel, IReadOnlyList<OracleStep> Steps);

/// <summary>Builds <see cref="OracleTrace"/>s from a model run and from the real runner's JSON lines, and normalizes values for comparison.</summary>
public static partial class OracleTraces
{
    public static readonly string[] CounterKeys =
        ["HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp", "HardwareCorrupted", "1G.total", "1G.free", "1G.resv", "1G.surp"];

    /// <summary>The model's run of a scenario, step by step.</summary>
    public static OracleTrace FromModel(ScenarioRun run)
    {
        var trace = run.Kernel.Trace;
        var h = run.Scenario.Host;
        var c = new Dictionary<string, long>
        {
            ["HugePages_Total[2M]"] = h.HugePages2M, ["HugePages_Free[2M]"] = h.HugePages2M, ["HugePages_Rsvd[2M]"] = 0, ["HugePages_Surp[2M]"] = 0,
            ["HugePages_Total[1G]"] = h.HugePages1G, ["HugePages_Free[1G]"] = h.HugePages1G, ["HugePages_Rsvd[1G]"] = 0, ["HugePages_Surp[1G]"] = 0,
            ["HardwareCorrupted"] = 0,
        };
        // counter changes before the first step (boot, spawning)
        int first = run.Steps.Count > 0 ? run.Steps[0].TraceStart : trace.Count;
        for (int i = 0; i < first; i++) if (trace[i] is CounterEvent ce) c[ce.Name] = ce.New;
        var steps = new List<OracleStep>();
        foreach (var so in run.Steps)
        {
            var s = so.Step;
            var ev = Enumerable.Range(so.TraceStart, so.TraceEnd - so.TraceStart).Select(i => trace[i]).ToList();
            foreach (var ce in ev.OfType<CounterEvent>()) c[ce.Name] = ce.New;
            if (so.Skipped || so.Summary.StartsWith("skipped:", StringComparison.Ordinal))
            {
                steps.Add(new OracleStep(s.Index, s.Op, s.As) { Skipped = so.Summary });
                continue;
            }
            var sys = ev.OfType<SyscallEvent>().LastOrDefault();
            var acc = ev.OfType<AccessEvent>().FirstOrDefault(a => a.Op == s.Op);
            long? mism = null;
            if (s.Expect?.Data is not null)
            {
                var df = so.Failures.FirstOrDefault(f => f.StartsWith("data:", StringComparison.Ordinal));
                mism = df is null ? 0 : long.TryParse(df.Split(' ')[1], out var n) ? n : 1;
            }
            steps.Add(new OracleStep(s.Index, s.Op, s.As)
            {
                Ret = sys?.Ret,
                Errno = sys is { Errno: not 0 } ? HugeFault.Errno.Name(sys.Errno) : null,
                Signals = ev.OfType<SignalEvent>().Select(g => new OracleSignal(g.Task, Sig.Name(g.Signo), g.Signo == Sig.SIGKILL ? "" : g.SiCodeName, g.SiAddrSym, g.SiAddrLsb)).ToList(),
                Log = ev.OfType<LogEvent>().Select(l => l.Text).ToList(),
                Counters = Snapshot(c),
                Outcome = acc?.Outcome,
                Done = acc is null ? null : (long)acc.Done,
                DataMismatches = mism,
                Panic = ev.OfType<PanicEvent>().Any(),
                PanicText = ev.OfType<PanicEvent>().FirstOrDefault()?.Describe(),
                Deaths = so.Deaths,
                PageFlags = so.PageFlags,
            });
        }
        return new OracleTrace("model", "model " + h.KernelVersion, steps);
    }

    private static Dictionary<string, long> Snapshot(Dictionary<string, long> c) => new()
    {
        ["HugePages_Total"] = c["HugePages_Total[2M]"], ["HugePages_Free"] = c["HugePages_Free[2M]"],
        ["HugePages_Rsvd"] = c["HugePages_Rsvd[2M]"], ["HugePages_Surp"] = c["HugePages_Surp[2M]"],
        ["HardwareCorrupted"] = c["HardwareCorrupted"],
        ["1G.total"] = c["HugePages_Total[1G]"], ["1G.free"] = c["HugePages_Free[1G]"], ["1G.resv"] = c["HugePages_Rsvd[1G]"], ["1G.surp"] = c["HugePages_Surp[1G]"],
    };

    /// <summary>
    /// The real runner's output (one JSON line per step, "kind":"step"; run.sh adds "console" lines for
    /// serial output such as a panic, and a "timing" line). Steps the run never reached after a panic
    /// are marked skipped; the first of them gets <c>Panic</c>.
    /// </summary>
    public static OracleTrace FromRealLines(IEnumerable<string> lines, Scenario? sc = null)
    {
        string kernel = "?";
        var steps = new List<OracleStep>();
        bool panic = false;
        string? panicText = null;
        foreach (var line in lines)
        {
            if (string.IsNullOrWhiteSpace(line) || !line.TrimStart().StartsWith('{')) continue;
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            if (r.TryGetProperty("kernel", out var kv) && kv.ValueKind == JsonValueKind.String && kv.GetString() is { Length: > 0 } kk && kernel == "?") kernel = kk;
            string kind = r.TryGetProperty("kind", out var k) ? k.GetString() ?? "" : r.TryGetProperty("step", out var st) && st.ValueKind == JsonValueKind.String ? st.GetString() ?? "" : "";
            if (kind == "console" && r.TryGetProperty("text", out var tx) && tx.GetString() is { } ctext && ctext.IndexOf("Kernel panic", StringComparison.Ordinal) is int at and >= 0)
            { panic = true; panicText ??= ctext[at..].Trim(); }
            if (kind != "step") continue;
            int i = r.GetProperty("i").GetInt32();
            string op = r.GetProperty("op").GetString()!;
            string? who = r.TryGetProperty("as", out var a) ? a.GetString() : null;
            if (r.TryGetProperty("skipped", out var sk)) { steps.Add(new OracleStep(i, op, who) { Skipped = sk.GetString() }); continue; }
            var res = r.GetProperty("result");
            // the runner's answer for a step of a process that has died: skipped, as the model skips it
            string? note = res.TryGetProperty("note", out var nt) ? nt.GetString() : null;
            if (note == "process is dead") { steps.Add(new OracleStep(i, op, who) { Skipped = note }); continue; }
            bool died = note == "process died";
            var sigs = r.GetProperty("signals").EnumerateArray().Select(g => new OracleSignal(
                g.GetProperty("to").GetString()!, g.GetProperty("signo").GetString()!, g.GetProperty("si_code").GetString()!,
                g.GetProperty("si_addr").GetString()!, g.GetProperty("si_addr_lsb").GetInt32())).ToList();
            var cn = r.GetProperty("counters");
            var counters = new Dictionary<string, long>();
            foreach (var key in CounterKeys)
            {
                if (key.StartsWith("1G.", StringComparison.Ordinal)) counters[key] = cn.GetProperty("1G").GetProperty(key[3..]).GetInt64();
                else counters[key] = cn.GetProperty(key).GetInt64();
            }
            steps.Add(new OracleStep(i, op, who)
            {
                Died = died,
                Ret = res.TryGetProperty("ret", out var rv) ? rv.GetInt64() : null,
                Errno = res.TryGetProperty("errno", out var en) ? en.GetString() : null,
                Signals = sigs,
                Log = r.GetProperty("log").EnumerateArray().Select(x => x.GetString() ?? "").ToList(),
                Counters = counters,
                Outcome = res.TryGetProperty("outcome", out var oc) ? oc.GetString() : null,
                Done = res.TryGetProperty("done", out var dn) ? dn.GetInt64() : null,
                DataMismatches = res.TryGetProperty("data", out var dd) ? dd.GetProperty("mismatches").GetInt64() : null,
                Deaths = RealDeaths(r, op, who),
                PageFlags = r.TryGetProperty("kpageflags", out var kp) ? kp.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetUInt64()) : new Dictionary<string, ulong>(),
            });
        }
        if (sc is not null)
        {
            // steps the guest never reported (it panicked or the run was cut short)
            var seen = steps.Select(s => s.Index).ToHashSet();
            bool firstMissing = true;
            foreach (var s in sc.Steps.Where(s => !seen.Contains(s.Index)))
            {
                steps.Add(new OracleStep(s.Index, s.Op, s.As) { Skipped = panic ? "the host panicked" : "no result from the guest", Panic = panic && firstMissing, PanicText = panic && firstMissing ? panicText : null });
                firstMissing = false;
            }
            steps.Sort((x, y) => x.Index.CompareTo(y.Index));
        }
        return new OracleTrace("real", kernel, steps);
    }

    /// <summary>The step's deaths: what the runner saw ("deaths", from waitpid or /proc/PID/stat), and the process an exit step ended.</summary>
    private static Dictionary<string, string> RealDeaths(JsonElement r, string op, string? who)
    {
        var d = r.TryGetProperty("deaths", out var de) ? de.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "?") : new Dictionary<string, string>();
        if (op == "exit" && who is not null) d.TryAdd(who, "exit");
        return d;
    }

    // ---------------------------------------------------------------- normalization

    [GeneratedRegex(@"0x[0-9a-fA-F]+")] private static partial Regex HexPrefixed();
    [GeneratedRegex(@"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{4,}\b|\b[0-9a-f]{6,}\b")] private static partial Regex HexBare();
    [GeneratedRegex(@"(\S):\d+\b")] private static partial Regex CommPid();
    [GeneratedRegex(@"\b(page|pfn) [0-9a-f]+\b")] private static partial Regex PageNumber();
    [GeneratedRegex(@"\s+")] private static partial Regex Spaces();
    // soft offline's "..., type %pGp": the raw page's flags in the kernel's format (a tail page shows node/zone only)
    [GeneratedRegex(@", type .*$")] private static partial Regex PageFlagsPrint();

    /// <summary>Kernel log lines that come from running under qemu TCG, not from the scenario (timer and
    /// clocksource complaints of a slow emulated CPU); they are left out of the comparison.</summary>
    public static readonly string[] NoisePrefixes =
        ["hrtimer: interrupt took", "clocksource:", "perf: interrupt took too long", "sched: RT throttling", "random: crng", "watchdog:", "rcu:", "INFO: rcu"];

    public static bool IsNoise(string line) => NoisePrefixes.Any(p => line.TrimStart().StartsWith(p, StringComparison.Ordinal));

    /// <summary>A kernel log line with hex numbers (pfns, addresses) and pids replaced by placeholders.</summary>
    public static string NormalizeLog(string line)
    {
        string s = HexPrefixed().Replace(line.Trim(), "<hex>");
        s = CommPid().Replace(s, "$1:<pid>");
        s = HexBare().Replace(s, "<hex>");
        s = PageNumber().Replace(s, "$1 <hex>");
        s = PageFlagsPrint().Replace(s, ", type <flags>");
        return Spaces().Replace(s, " ");
    }

    /// <summary>Operations whose successful return value is a handle (fd, pid, address, pfn), not a comparable number.</summary>
    public static bool ReturnsHandle(string op) => op is "memfd_create" or "open" or "userfaultfd" or "mmap" or "fork" or "pfn_of" or "thread" or "shmget" or "shmat";

    /// <summary>The return value as compared: handles become "ok", errors "-1 ERRNO", numbers themselves.</summary>
    public static string? NormalizeRet(OracleStep s)
    {
        if (s.Ret is null) return null;
        if (s.Errno is not null) return $"-1 {s.Errno}";
        if (ReturnsHandle(s.Op)) return s.Ret >= 0 ? "ok" : s.Ret.Value.ToString(CultureInfo.InvariantCulture);
        return s.Ret.Value.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>"a", "a+0x5000", "a+20480" → (a, 0x5000); anything else → (text, 0).</summary>
    public static (string Name, ulong Offset) ParseSym(string sym)
    {
        int plus = sym.IndexOf('+');
        if (plus < 0) return ScenarioParser.TryParseSize(sym, out var v) && char.IsDigit(sym[0]) ? ("", v) : (sym, 0);
        return ScenarioParser.TryParseSize(sym[(plus + 1)..], out var off) ? (sym[..plus], off) : (sym, 0);
    }

    public static string NormalizeSym(string sym)
    {
        var (n, o) = ParseSym(sym);
        return o == 0 ? n : $"{n}+0x{o:x}";
    }

    public static string NormalizeSignal(OracleSignal g) =>
        g.Signo == "SIGKILL" ? $"{g.To} SIGKILL" : $"{g.To} {g.Signo} {g.SiCode} {NormalizeSym(g.SiAddr)} lsb={g.SiAddrLsb}";

    /// <summary>The access outcome without detail in parentheses ("SIGBUS BUS_MCEERR_AR (machine check)" → "SIGBUS BUS_MCEERR_AR").</summary>
    public static string? NormalizeOutcome(string? o) => o is null ? null : (o.IndexOf(" (", StringComparison.Ordinal) is int p and >= 0 ? o[..p] : o);
}

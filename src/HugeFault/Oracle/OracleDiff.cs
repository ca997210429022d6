using System.Globalization;
using HugeFault.Scenarios;

namespace HugeFault.Oracle;

/// <summary>One compared field of one step: the model's and the real kernel's normalized values.</summary>
public sealed record FieldDiff(string Field, string Model, string Real)
{
    public bool Match => Model == Real;
}

/// <summary>A step compared: every field, plus the scenario's expectations evaluated on the real trace.</summary>
public sealed record StepDiff(int Index, string Op, string? As, string? Skipped, IReadOnlyList<FieldDiff> Fields, IReadOnlyList<string> RealFailures)
{
    public bool Match => Skipped is not null || Fields.All(f => f.Match);
    public IEnumerable<FieldDiff> Mismatches => Fields.Where(f => !f.Match);
}

/// <summary>Compares a model trace with a real one, step by step, field by field, in normalized form.</summary>
public static class OracleDiff
{
    public static List<StepDiff> Compare(Scenario sc, OracleTrace model, OracleTrace real)
    {
        var list = new List<StepDiff>();
        var ctx = new OracleContext();
        foreach (var s in sc.Steps)
        {
            var rs = real.Steps.FirstOrDefault(x => x.Index == s.Index);
            ulong? before = s.Expect?.Pfn is { } pe && ctx.Vars.TryGetValue(pe.Var, out var pv) ? pv : null;
            if (rs is { Skipped: null }) ctx.Observe(s, rs);
            var m = model.Steps.FirstOrDefault(x => x.Index == s.Index);
            var r = real.Steps.FirstOrDefault(x => x.Index == s.Index);
            if (m is null || r is null) { list.Add(new StepDiff(s.Index, s.Op, s.As, "missing in " + (m is null ? "model" : "real") + " trace", [], [])); continue; }
            if (r.Skipped is not null && !r.Panic)
            {
                // a step Linux could not run (its process is dead): only who is dead can still be checked
                var deadFails = s.Expect?.Dead is { } ? OracleExpect.Check(s.Expect, r, ctx, before) : [];
                list.Add(new StepDiff(s.Index, s.Op, s.As, "real: " + r.Skipped, [], deadFails));
                continue;
            }
            var fields = CompareStep(m, r, s.Expect);
            var fails = s.Expect is null ? [] : OracleExpect.Check(s.Expect, r, ctx, before);
            list.Add(new StepDiff(s.Index, s.Op, s.As, null, fields, fails));
        }
        return list;
    }

    /// <summary>The fields of two steps that both sides report (kpageflags: the bits <paramref name="e"/> names).</summary>
    public static List<FieldDiff> CompareStep(OracleStep m, OracleStep r, Expect? e = null)
    {
        var f = new List<FieldDiff>();
        if (m.Panic || r.Panic)
        {
            f.Add(new FieldDiff("panic", B(m.Panic), B(r.Panic)));
            if (m.Panic && r.Panic) f.Add(new FieldDiff("panic message", OracleTraces.NormalizeLog(m.PanicText ?? ""), OracleTraces.NormalizeLog(r.PanicText ?? "")));
            return f;
        }
        if (m.Skipped is not null || r.Skipped is not null)
        {
            f.Add(new FieldDiff("ran", m.Skipped is null ? "yes" : "skipped", r.Skipped is null ? "yes" : "skipped"));
            return f;
        }
        // a step whose process died has no result on Linux; the model's (what the call would have returned) is not compared
        if (!r.Died)
        {
            var mr = OracleTraces.NormalizeRet(m); var rr = OracleTraces.NormalizeRet(r);
            if (mr is not null || rr is not null) f.Add(new FieldDiff("ret", mr ?? "-", rr ?? "-"));
            if (m.Outcome is not null || r.Outcome is not null)
            {
                f.Add(new FieldDiff("outcome", OracleTraces.NormalizeOutcome(m.Outcome) ?? "-", OracleTraces.NormalizeOutcome(r.Outcome) ?? "-"));
                if (m.Done is not null && r.Done is not null) f.Add(new FieldDiff("done", N(m.Done.Value), N(r.Done.Value)));
            }
            if (m.DataMismatches is not null || r.DataMismatches is not null)
                f.Add(new FieldDiff("data", Data(m.DataMismatches), Data(r.DataMismatches)));
        }
        // a process killed by the signal cannot report its siginfo: such signals are compared as deaths
        static IEnumerable<string> Sigs(OracleStep x) => x.Signals.Where(g => !x.Deaths.TryGetValue(g.To, out var how) || how != g.Signo)
            .Select(OracleTraces.NormalizeSignal).Order(StringComparer.Ordinal);
        f.Add(new FieldDiff("signals", Join(Sigs(m)), Join(Sigs(r))));
        if (m.Deaths.Count > 0 || r.Deaths.Count > 0)
            f.Add(new FieldDiff("deaths", Join(m.Deaths.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"{d.Key} {d.Value}")),
                Join(r.Deaths.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"{d.Key} {d.Value}"))));
        foreach (var pf in e?.PageFlags ?? [])
        {
            ulong mask = pf.Has.Concat(pf.Lacks).Aggregate(0UL, (a, n) => a | 1UL << PageFlagsExpect.Bits[n]);
            string F(OracleStep x) => x.PageFlags.TryGetValue(pf.Where, out var v) ? ExpectRules.Names(v & mask) : "not read";
            f.Add(new FieldDiff("kpageflags " + pf.Where, F(m), F(r)));
        }
        f.Add(new FieldDiff("log", Join(m.Log.Where(l => !OracleTraces.IsNoise(l)).Select(OracleTraces.NormalizeLog)),
            Join(r.Log.Where(l => !OracleTraces.IsNoise(l)).Select(OracleTraces.NormalizeLog))));
        foreach (var k in OracleTraces.CounterKeys)
        {
            long mv = m.Counters.GetValueOrDefault(k, -1), rv = r.Counters.GetValueOrDefault(k, -1);
            if (k.StartsWith("1G.", StringComparison.Ordinal) && rv < 0) continue;
            f.Add(new FieldDiff(k, N(mv), N(rv)));
        }
        return f;
    }

    private static string B(bool b) => b ? "yes" : "no";
    private static string N(long v) => v.ToString(CultureInfo.InvariantCulture);
    private static string Data(long? m) => m is null ? "-" : m == 0 ? "as expected" : $"{m} lines differ";
    private static string Join(IEnumerable<string> xs) { var s = string.Join(" | ", xs); return s.Length == 0 ? "(none)" : s; }
}

/// <summary>
/// A scenario's expectations evaluated on a normalized trace step, with the same rules as
/// <see cref="ScenarioRunner"/>'s checks (exact or included signals with optional fields, counters,
/// log substrings, data, outcome prefix, done, panic). <c>trace</c> and <c>alive</c> are model-side
/// details and are not evaluated here.
/// </summary>
public static class OracleExpect
{
    public static List<string> Check(Expect e, OracleStep r) => Check(e, r, new OracleContext(), null);

    /// <summary>Checks the expectations of a step; <paramref name="ctx"/> holds pfn variables and deaths up to and including it,
    /// <paramref name="pfnBefore"/> the value of the pfn expectation's variable before the step.</summary>
    public static List<string> Check(Expect e, OracleStep r, OracleContext ctx, ulong? pfnBefore)
    {
        var f = new List<string>();
        ExpectRules.Dead(e.Dead, p => ctx.Deaths.TryGetValue(p, out var how) ? how : "alive", f);
        if (e.Panic is { } pn && r.Panic != pn) f.Add($"panic: expected {pn}, got {r.Panic}");
        if (r.Skipped is not null) return f;
        long ret = r.Ret ?? 0;
        bool result = !r.Died; // what the call returned and accessed exists only if its process survived it
        if (result && e.Ret is { } wantRet && ret != wantRet) f.Add($"ret: expected {wantRet}, got {ret}" + (r.Errno is { } en0 ? $" ({en0})" : ""));
        if (result && e.Errno is { } en && r.Errno != en) f.Add($"errno: expected {en}, got {r.Errno ?? "none (success)"}");
        if (e.Signals is { } sigs)
        {
            var unmatched = r.Signals.ToList();
            foreach (var w in sigs)
            {
                var hit = unmatched.FirstOrDefault(g => Matches(w, g));
                if (hit is not null) { unmatched.Remove(hit); continue; }
                f.Add($"signal to {w.To}: expected {w.Signo}{(w.SiCode is null ? "" : " " + w.SiCode)}{(w.SiAddr is null ? "" : " si_addr=" + w.SiAddr)}{(w.SiAddrLsb is null ? "" : " si_addr_lsb=" + w.SiAddrLsb)}"
                    + (r.Signals.Count > 0 ? $" (got: {string.Join("; ", r.Signals)})" : " (no signals)"));
            }
            if (e.SignalsExact && unmatched.Count > 0) f.Add($"unexpected signal(s): {string.Join("; ", unmatched)}");
        }
        foreach (var (key, want) in e.MemInfo ?? new Dictionary<string, long>())
        {
            if (key == "PageTables") continue;
            long got = r.Counters.GetValueOrDefault(key, -1);
            if (got != want) f.Add($"meminfo {key}: expected {want}, got {got}");
        }
        foreach (var (size, want) in e.HugePages ?? new Dictionary<string, HugepageExpect>())
        {
            string p = size == "1G" ? "1G." : "";
            void C(string n, string key, long? w)
            {
                if (w is not { } ww) return;
                long got = r.Counters.GetValueOrDefault(p == "" ? key : p + n, -1);
                if (got != ww) f.Add($"hugepages {size} {n}: expected {ww}, got {got}");
            }
            C("total", "HugePages_Total", want.Total); C("free", "HugePages_Free", want.Free); C("resv", "HugePages_Rsvd", want.Resv); C("surp", "HugePages_Surp", want.Surp);
        }
        foreach (var want in e.Log ?? [])
            if (!r.Log.Any(l => l.Contains(want, StringComparison.Ordinal))) f.Add($"log: no line containing \"{want}\"" + (r.Log.Count > 0 ? $" (got: {string.Join(" | ", r.Log)})" : " (no log lines)"));
        foreach (var bad in e.NoLog ?? [])
            if (r.Log.FirstOrDefault(l => l.Contains(bad, StringComparison.Ordinal)) is { } hit) f.Add($"no_log: unexpected line \"{hit}\"");
        if (result && e.Data is not null)
        {
            if (r.DataMismatches is null) f.Add("data: this step read nothing to compare");
            else if (r.DataMismatches > 0) f.Add($"data: {r.DataMismatches} cachelines differ from {e.Data}");
        }
        if (result && e.Outcome is { } oc && !(r.Outcome ?? "(no access)").StartsWith(oc, StringComparison.Ordinal)) f.Add($"outcome: expected {oc}, got {r.Outcome ?? "(no access)"}");
        if (result && e.Done is { } done && (r.Done ?? 0) != done) f.Add($"done: expected {done} bytes, got {r.Done ?? 0}");
        if (result)
        {
            ExpectRules.Number("ret", e.RetRule, ret, f);
            ExpectRules.OneOf("errno", e.ErrnoOneOf, r.Errno ?? "none", f);
            ExpectRules.OneOf("outcome", e.OutcomeOneOf, r.Outcome ?? "(no access)", f, prefix: true);
            ExpectRules.Number("done", e.DoneRule, r.Done ?? 0, f);
        }
        foreach (var (key, rule) in e.CounterRules ?? new Dictionary<string, NumExpect>())
        {
            // SIZE.field: the 2 MiB pool is what /proc/meminfo shows; 1 GiB from sysfs
            string k = key.StartsWith("2M.", StringComparison.Ordinal) ? key[3..] switch { "total" => "HugePages_Total", "free" => "HugePages_Free", "resv" => "HugePages_Rsvd", _ => "HugePages_Surp" } : key;
            if (k == "PageTables") continue;
            ExpectRules.Number(key, rule, r.Counters.GetValueOrDefault(k, -1), f);
        }
        foreach (var pf in e.PageFlags ?? [])
            ExpectRules.PageFlags(pf, r.PageFlags.TryGetValue(pf.Where, out var v) ? v : null, f);
        if (e.Pfn is { } pe) ExpectRules.Pfn(pe, pfnBefore, (ulong)ret, f);
        return f;
    }

    private static bool Matches(SignalExpect w, OracleSignal g)
    {
        if (g.To != w.To || g.Signo != w.Signo) return false;
        if (w.SiCode is { } c && g.SiCode != c) return false;
        if (w.SiAddrLsb is { } l && g.SiAddrLsb != l) return false;
        if (w.SiAddr is { } a && OracleTraces.NormalizeSym(a) != OracleTraces.NormalizeSym(g.SiAddr)) return false;
        return true;
    }
}

/// <summary>What a real trace has shown up to a step: pfn variables saved by pfn_of, and how processes died.</summary>
public sealed class OracleContext
{
    public Dictionary<string, ulong> Vars { get; } = new();
    public Dictionary<string, string> Deaths { get; } = new();

    public void Observe(Step s, OracleStep r)
    {
        if (s.Op == "pfn_of" && r.Ret is > 0 && s.Args.TryGetValue("save", out var v)) Vars[v.Text] = (ulong)r.Ret.Value;
        foreach (var (p, how) in r.Deaths) Deaths[p] = how;
    }
}

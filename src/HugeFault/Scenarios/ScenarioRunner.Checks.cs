using System.Globalization;
using HugeFault.Mm;

namespace HugeFault.Scenarios;

// The expectation checks of ScenarioRunner: what the model's kernel state and trace must show after a step.
public sealed partial class ScenarioRunner
{
    private List<string> Check(Step s, Expect e, int start, int end)
    {
        var f = new List<string>();
        var events = _k.Trace.Skip(start).Take(end - start).ToList();
        if (e.Ret is { } ret && _lastRet != ret) f.Add($"ret: expected {ret}, got {_lastRet}" + (_lastErrno != 0 ? $" ({Errno.Name(_lastErrno)})" : ""));
        if (e.Errno is { } en && Errno.Name(_lastErrno) != en) f.Add($"errno: expected {en}, got {(_lastErrno == 0 ? "none (success)" : Errno.Name(_lastErrno))}");
        if (e.Signals is { } sigs) CheckSignals(e, sigs, events.OfType<SignalEvent>().ToList(), f);
        if (e.MemInfo is { } mi)
        {
            var m = _k.MemInfo();
            foreach (var (key, want) in mi)
            {
                long got = key switch
                {
                    "HugePages_Total" => m.HugePages_Total, "HugePages_Free" => m.HugePages_Free, "HugePages_Rsvd" => m.HugePages_Rsvd,
                    "HugePages_Surp" => m.HugePages_Surp, "HardwareCorrupted" => m.HardwareCorrupted, "PageTables" => m.PageTables, _ => -1,
                };
                if (got != want) f.Add($"meminfo {key}: expected {want}, got {got}" + (key == "HardwareCorrupted" ? " kB" : ""));
            }
        }
        if (e.HugePages is { } hp)
        {
            foreach (var (size, want) in hp)
            {
                var h = size == "1G" ? _k.H1G : _k.H2M;
                void C(string n, long? w, long g) { if (w is { } ww && ww != g) f.Add($"hugepages {size} {n}: expected {ww}, got {g}"); }
                C("total", want.Total, h.nr_huge_pages); C("free", want.Free, h.free_huge_pages); C("resv", want.Resv, h.resv_huge_pages); C("surp", want.Surp, h.surplus_huge_pages);
            }
        }
        var logs = events.OfType<LogEvent>().Select(l => l.Text).ToList();
        foreach (var want in e.Log ?? [])
            if (!logs.Any(l => l.Contains(want, StringComparison.Ordinal))) f.Add($"log: no line containing \"{want}\"" + (logs.Count > 0 ? $" (got: {string.Join(" | ", logs)})" : " (no log lines)"));
        foreach (var bad in e.NoLog ?? [])
            if (logs.FirstOrDefault(l => l.Contains(bad, StringComparison.Ordinal)) is { } hit) f.Add($"no_log: unexpected line \"{hit}\"");
        foreach (var want in e.Trace ?? [])
            if (!events.Any(ev => ev.Describe().Contains(want, StringComparison.Ordinal))) f.Add($"trace: no event containing \"{want}\"");
        if (e.Data is not null)
        {
            if (_lastCheck is null) f.Add("data: this step read nothing to compare");
            else if (_lastCheck.Mismatches > 0) f.Add($"data: {_lastCheck.Mismatches} of {_lastCheck.LinesChecked} cachelines differ from {e.Data}, first at buffer offset {Units.Hex((ulong)_lastCheck.FirstMismatchAt)}");
        }
        if (e.Outcome is { } oc)
        {
            string got = _lastAccess?.Outcome ?? "(no access)";
            if (!got.StartsWith(oc, StringComparison.Ordinal)) f.Add($"outcome: expected {oc}, got {got}");
        }
        if (e.Done is { } done && (long)(_lastAccess?.Done ?? 0) != done) f.Add($"done: expected {done} bytes, got {_lastAccess?.Done ?? 0}");
        if (e.Alive is { } alive)
            foreach (var (p, want) in alive)
            {
                if (!_procs.TryGetValue(p, out var t)) { f.Add($"alive: no process '{p}'"); continue; }
                if (t.Alive != want) f.Add($"alive {p}: expected {want}, got {t.Alive}" + (t.ExitReason is { } r ? $" ({r})" : ""));
            }
        if (e.Panic is { } pn && _k.Panicked != pn) f.Add($"panic: expected {pn}, got {_k.Panicked}");
        CheckRules(e, f);
        if (e.Guest is { } g)
        {
            string vname = g.TryGetValue("vm", out var vn) ? vn : _vms.Keys.FirstOrDefault() ?? "";
            if (!_vms.TryGetValue(vname, out var vm)) f.Add($"guest: no vm '{vname}'");
            else
            {
                void C(string key, string got) { if (g.TryGetValue(key, out var w) && w != got) f.Add($"guest {vname} {key}: expected {w}, got {got}"); }
                C("alive", vm.Alive ? "true" : "false");
                C("mces", vm.Mces.ToString(CultureInfo.InvariantCulture));
                C("offlined", vm.OfflinedGfns.Count.ToString(CultureInfo.InvariantCulture));
                C("killed", vm.GuestProcessesKilled.ToString(CultureInfo.InvariantCulture));
                C("panicked", vm.PanicReason is null ? "false" : "true");
                C("qemu_exited", vm.QemuExited ? "true" : "false");
                C("poison_list", vm.HwpoisonList.Count.ToString(CultureInfo.InvariantCulture));
                if (g.TryGetValue("memory_lost", out var ml) && ScenarioParser.TryParseSize(ml, out var mlv) && mlv != vm.GuestMemoryLost())
                    f.Add($"guest {vname} memory_lost: expected {ml}, got {Units.Size(vm.GuestMemoryLost())}");
            }
        }
        if (e.Migration is { } mg)
        {
            if (_lastMigration is not { } mr) f.Add("migration: this step did not migrate");
            else
            {
                if (mg.TryGetValue("refused", out var rf) && rf != (mr.Refused ? "true" : "false")) f.Add($"migration refused: expected {rf}, got {mr.Refused}");
                if (mg.TryGetValue("granule", out var gr) && ScenarioParser.TryParseSize(gr, out var grv) && grv != mr.Granule) f.Add($"migration granule: expected {gr}, got {Units.Size(mr.Granule)}");
                if (mg.TryGetValue("fake_poisoned", out var fp) && ScenarioParser.TryParseSize(fp, out var fpv) && fpv != mr.FakePoisonedBytes) f.Add($"migration fake_poisoned: expected {fp}, got {Units.Size(mr.FakePoisonedBytes)}");
                if (mg.TryGetValue("poison_set", out var ps) && !mr.PoisonSetRelation.StartsWith(ps switch { "equal" => "equal", "superset" => "a superset", _ => ps }, StringComparison.Ordinal)) f.Add($"migration poison_set: expected {ps}, got {mr.PoisonSetRelation}");
                if (mg.TryGetValue("faults", out var fl) && fl != mr.Faults.ToString(CultureInfo.InvariantCulture)) f.Add($"migration faults: expected {fl}, got {mr.Faults}");
            }
        }
        return f;
    }

    /// <summary>The rule-shaped expectations (at_least/one_of, kpageflags, pfn, dead), shared with the real-trace check.</summary>
    private void CheckRules(Expect e, List<string> f)
    {
        ExpectRules.Number("ret", e.RetRule, _lastRet, f);
        ExpectRules.OneOf("errno", e.ErrnoOneOf, _lastErrno == 0 ? "none" : Errno.Name(_lastErrno), f);
        ExpectRules.OneOf("outcome", e.OutcomeOneOf, _lastAccess?.Outcome ?? "(no access)", f, prefix: true);
        ExpectRules.Number("done", e.DoneRule, (long)(_lastAccess?.Done ?? 0), f);
        foreach (var (key, rule) in e.CounterRules ?? new Dictionary<string, NumExpect>())
            ExpectRules.Number(key, rule, Counter(key), f, key == "HardwareCorrupted" ? " kB" : "");
        foreach (var pf in e.PageFlags ?? [])
            ExpectRules.PageFlags(pf, _vars.TryGetValue(pf.Var, out var v) ? _k.StablePageFlags(v + (ulong)pf.PageOffset) : null, f);
        if (e.Pfn is { } pe) ExpectRules.Pfn(pe, _vars.TryGetValue(pe.Var, out var sv) ? sv : null, (ulong)_lastRet, f);
        ExpectRules.Dead(e.Dead, p => !_procs.TryGetValue(p, out var t) ? "no such process" : t.Alive ? "alive" : DeathOf(t), f);
    }

    /// <summary>How a dead task ended, as the expectation names it: the killing signal, or "exit".</summary>
    private static string DeathOf(TaskStruct t) => t.ExitReason is { } r && r.StartsWith("killed by ", StringComparison.Ordinal) ? r["killed by ".Length..] : "exit";

    /// <summary>A counter by expectation name: meminfo names (2 MiB pool), HardwareCorrupted (kB), or SIZE.total/free/resv/surp.</summary>
    private long Counter(string key)
    {
        var m = _k.MemInfo();
        var parts = key.Split('.');
        if (parts.Length == 2)
        {
            var h = parts[0] == "1G" ? _k.H1G : _k.H2M;
            return parts[1] switch { "total" => h.nr_huge_pages, "free" => h.free_huge_pages, "resv" => h.resv_huge_pages, _ => h.surplus_huge_pages };
        }
        return key switch
        {
            "HugePages_Total" => m.HugePages_Total, "HugePages_Free" => m.HugePages_Free, "HugePages_Rsvd" => m.HugePages_Rsvd,
            "HugePages_Surp" => m.HugePages_Surp, "HardwareCorrupted" => m.HardwareCorrupted, "PageTables" => m.PageTables, _ => -1,
        };
    }

    private void CheckSignals(Expect e, IReadOnlyList<SignalExpect> want, List<SignalEvent> got, List<string> f)
    {
        string Show(SignalEvent g) => g.Describe();
        var unmatched = got.ToList();
        foreach (var w in want)
        {
            var hit = unmatched.FirstOrDefault(g => Matches(w, g, out _));
            if (hit is not null) { unmatched.Remove(hit); continue; }
            var near = unmatched.FirstOrDefault(g => g.Task == w.To);
            string why = near is not null && !Matches(w, near, out var diff) ? diff : "no such signal";
            f.Add($"signal to {w.To}: expected {Describe(w)}; {why}" + (got.Count > 0 ? $" (got: {string.Join("; ", got.Select(Show))})" : " (no signals)"));
        }
        if (e.SignalsExact && unmatched.Count > 0)
            f.Add($"unexpected signal(s): {string.Join("; ", unmatched.Select(Show))}");
    }

    private static string Describe(SignalExpect w) =>
        $"{w.Signo}{(w.SiCode is null ? "" : " " + w.SiCode)}{(w.SiAddr is null ? "" : " si_addr=" + w.SiAddr)}{(w.SiAddrLsb is null ? "" : " si_addr_lsb=" + w.SiAddrLsb)}";

    private bool Matches(SignalExpect w, SignalEvent g, out string diff)
    {
        diff = "";
        if (g.Task != w.To) { diff = $"went to {g.Task}"; return false; }
        if (Sig.Name(g.Signo) != w.Signo) { diff = $"got {Sig.Name(g.Signo)}"; return false; }
        if (w.SiCode is { } c && g.SiCodeName != c) { diff = $"si_code {g.SiCodeName}"; return false; }
        if (w.SiAddrLsb is { } l && g.SiAddrLsb != l) { diff = $"si_addr_lsb {g.SiAddrLsb}"; return false; }
        if (w.SiAddr is { } a)
        {
            var want = ResolveAddr(a);
            if (want is null) { diff = $"cannot resolve address '{a}'"; return false; }
            if (want.Value != g.SiAddr) { diff = $"si_addr {g.SiAddrSym}"; return false; }
        }
        return true;
    }

    /// <summary>"name+0xoff", "name", or a number.</summary>
    private ulong? ResolveAddr(string a)
    {
        int plus = a.IndexOf('+');
        string name = plus < 0 ? a : a[..plus];
        if (_maps.TryGetValue(name, out var m))
        {
            if (plus < 0) return m.Va;
            return ScenarioParser.TryParseSize(a[(plus + 1)..], out var off) ? m.Va + off : null;
        }
        return ScenarioParser.TryParseSize(a, out var v) ? v : null;
    }
}

using System.Globalization;
using HugeFault.Mm;
using HugeFault.Policies;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace HugeFault.Scenarios;

/// <summary>A problem in a scenario file: where, what, and how to fix it.</summary>
public sealed record ScenarioError(SourcePos Pos, string Message, string? Hint = null)
{
    public override string ToString() => $"{Pos}: {Message}" + (Hint is null ? "" : $" (hint: {Hint})");
}

/// <summary>
/// Parses scenario YAML into a validated <see cref="Scenario"/>, collecting every error with its
/// file:line:column instead of throwing.
/// </summary>
public static partial class ScenarioParser
{
    /// <summary>Operations, their required and optional arguments.</summary>
    public static readonly IReadOnlyDictionary<string, (string[] Req, string[] Opt, string Doc)> Ops = new Dictionary<string, (string[], string[], string)>
    {
        ["memfd_create"] = (["as", "name", "fd"], ["flags"], "memfd_create(name, flags); the fd gets a scenario name"),
        ["open"] = (["as", "path", "fd"], ["create"], "open a file on /dev/hugepages (2M), /dev/hugepages1G or /dev/shm"),
        ["close"] = (["as", "fd"], [], "close(fd)"),
        ["unlink"] = (["path"], [], "unlink(path)"),
        ["ftruncate"] = (["as", "fd", "length"], [], "ftruncate(fd, length)"),
        ["fallocate"] = (["as", "fd", "offset", "length"], ["mode"], "fallocate(fd, mode, offset, length)"),
        ["lseek"] = (["as", "fd", "offset"], ["whence"], "lseek(fd, offset, whence)"),
        ["read"] = (["as", "fd", "length"], [], "read(fd, buf, length) at the file position"),
        ["pread"] = (["as", "fd", "length", "offset"], [], "pread(fd, buf, length, offset)"),
        ["mmap"] = (["as", "length", "name"], ["prot", "flags", "fd", "offset"], "mmap(); the mapping gets a scenario name used in addresses (name+offset)"),
        ["munmap"] = (["as", "map"], ["offset", "length"], "munmap(name+offset, length)"),
        ["madvise"] = (["as", "map", "advice"], ["offset", "length"], "madvise(name+offset, length, advice)"),
        ["fork"] = (["as", "child"], [], "fork(); the child gets a scenario name"),
        ["exit"] = (["as"], [], "exit()"),
        ["prctl"] = (["as", "option"], ["arg2", "arg3"], "prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY|LATE)"),
        ["sysctl"] = (["name", "value"], [], "write /proc/sys/vm/<name>"),
        ["nr_hugepages"] = (["size", "value"], [], "write /sys/kernel/mm/hugepages/hugepages-<size>/nr_hugepages"),
        ["store"] = (["as", "map"], ["offset", "length", "pattern"], "CPU stores of a data pattern to name+offset"),
        ["load"] = (["as", "map"], ["offset", "length"], "CPU loads from name+offset"),
        ["hw_error"] = ([], ["as", "map", "offset", "fd", "phys", "pfn", "kind", "detect"], "a hardware error in one cacheline (model only): at phys, at pfn ($var) + offset, or at a mapping/file offset"),
        ["corrupt_pfn"] = ([], ["pfn", "as", "map", "offset"], "debugfs hwpoison/corrupt-pfn"),
        ["unpoison_pfn"] = ([], ["pfn", "as", "map", "offset"], "debugfs hwpoison/unpoison-pfn"),
        ["pfn_of"] = (["as", "map", "save"], ["offset"], "read the pfn of name+offset from /proc/self/pagemap into a variable"),
        ["userfaultfd"] = (["as", "fd"], ["features"], "userfaultfd() + UFFDIO_API"),
        ["uffdio_register"] = (["as", "uffd", "map"], ["offset", "length", "mode"], "UFFDIO_REGISTER"),
        ["uffdio_copy"] = (["as", "uffd", "map"], ["offset", "length", "pattern"], "UFFDIO_COPY"),
        ["uffdio_poison"] = (["as", "uffd", "map"], ["offset", "length"], "UFFDIO_POISON"),
        ["read_loop"] = (["as", "fd", "chunk"], [], "read(fd, buf, chunk) repeatedly until it returns 0 or fails; ret = total bytes, errno = the last read's"),
        ["kvm_guest_access"] = (["as", "map"], ["offset", "length"], "a KVM guest access to the guest page backed by name+offset: KVM's GUP of the hva (hva_to_pfn)"),
        ["vm_create"] = (["name"], ["ram", "page_size", "vcpus", "kernel_fraction", "max_mces", "mce_window_s", "amd", "enlightened", "qemu", "populate"], "a KVM VM: a QEMU-like VMM (early kill) with vCPU threads, guest RAM = hugetlb memfd MAP_SHARED, EPT, guest OS"),
        ["guest_access"] = (["vm", "gpa"], ["length", "vcpu", "write", "pattern"], "a guest load/store at a guest-physical address through the EPT"),
        ["guest_touch"] = (["vm", "gpa", "length", "pages"], ["rate", "vcpu"], "the guest touches N distinct 4 KiB pages of [gpa, gpa+length), at `rate` touches per second"),
        ["vm_reset"] = (["vm"], [], "system reset: QEMU discards poisoned pages (10.0+: whole huge page) and the guest reboots"),
        ["migrate"] = (["vm"], ["mode", "on_poison", "bandwidth_gbps", "rtt_us", "dirty_mbps", "touches", "max_downtime_ms", "preempt"], "live migration to a fresh host of the same configuration"),
        ["thread"] = (["as", "name"], [], "a new thread of process 'as' (clone(CLONE_VM|CLONE_FILES|CLONE_THREAD)); steps with as: NAME run in that task"),
        ["uffdio_continue"] = (["as", "uffd", "map"], ["offset", "length"], "UFFDIO_CONTINUE: map the page-cache pages of a MINOR-registered range"),
        ["uffdio_writeprotect"] = (["as", "uffd", "map"], ["offset", "length", "protect"], "UFFDIO_WRITEPROTECT (protect: true to write-protect, false to resolve)"),
        ["shmget"] = (["as", "shm", "size"], ["flags"], "shmget(IPC_PRIVATE, size, IPC_CREAT|flags): a SysV segment named shm"),
        ["shmat"] = (["as", "shm", "name"], [], "shmat(shmid, NULL, 0): the attach gets a mapping name"),
        ["shmdt"] = (["as", "map"], [], "shmdt(name)"),
        ["shm_rmid"] = (["as", "shm"], [], "shmctl(shmid, IPC_RMID)"),
        ["check"] = ([], [], "only check expectations"),
    };

    private static readonly string[] ExpectKeys = ["ret", "errno", "signals", "signals_include", "meminfo", "hugepages", "log", "no_log", "trace", "data", "outcome", "alive", "panic", "done", "guest", "migration", "kpageflags", "pfn", "dead"];

    public static (Scenario? Scenario, IReadOnlyList<ScenarioError> Errors) ParseFile(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { return (null, [new ScenarioError(new SourcePos(path, 0, 0), $"cannot read file: {e.Message}", "check the path")]); }
        return Parse(path, text);
    }

    public static (Scenario? Scenario, IReadOnlyList<ScenarioError> Errors) Parse(string file, string text)
    {
        var errors = new List<ScenarioError>();
        var stream = new YamlStream();
        var parser = new Parser(new StringReader(text));
        try { stream.Load(parser); }
        catch (YamlException e)
        {
            return (null, [new ScenarioError(new SourcePos(file, (int)e.Start.Line, (int)e.Start.Column), "YAML syntax error: " + (e.InnerException?.Message ?? e.Message), "check indentation and quoting")]);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet throws these (not a YamlException) on some malformed input: InvalidOperationException on
            // unterminated flow collections ("{as: A, map: a" then a new item), ArgumentException on events the
            // representation model does not support. Report them after the last event it parsed.
            var at = parser.Current?.End ?? Mark.Empty;
            var pos = new SourcePos(file, (int)Math.Max(1, at.Line), (int)Math.Max(1, at.Column));
            return (null, [e is InvalidOperationException
                ? new ScenarioError(pos, "YAML syntax error: unterminated flow collection ('{' or '[' without its closing bracket)", "close every '{' with '}' and '[' with ']' on the same item")
                : new ScenarioError(pos, "YAML syntax error: unexpected YAML construct here", "check indentation, quoting and stray '%', '&', '*' or '!' characters")]);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            return (null, [new ScenarioError(new SourcePos(file, 1, 1), "a scenario must be a YAML mapping", "start with 'name:', 'host:' and 'steps:'")]);
        var p = new P(file, errors);
        var sc = p.Scenario(root);
        return (errors.Count == 0 ? sc : null, Capped(errors));
    }

    /// <summary>At most this many errors of one file are reported (one per distinct problem), then a count of the rest.</summary>
    public const int MaxErrors = 50;

    private static IReadOnlyList<ScenarioError> Capped(List<ScenarioError> errors)
    {
        var distinct = errors.DistinctBy(e => (e.Pos, e.Message)).ToList();
        if (distinct.Count <= MaxErrors) return distinct;
        var rest = distinct.Count - MaxErrors;
        return [.. distinct.Take(MaxErrors), new ScenarioError(distinct[MaxErrors].Pos, $"and {rest} more error(s) not shown", "fix the errors above first")];
    }

    /// <summary>"$p" or "$p+5" (a saved pfn plus a page count).</summary>
    public static bool TryPfnRef(string s, out string var, out long add)
    {
        var = ""; add = 0;
        if (!s.StartsWith('$') || s.Length < 2) return false;
        int plus = s.IndexOf('+');
        var = plus < 0 ? s[1..] : s[1..plus];
        if (plus >= 0 && !(TryParseSize(s[(plus + 1)..], out var a) && (add = (long)a) >= 0)) return false;
        return var.Length > 0 && var.All(c => char.IsLetterOrDigit(c) || c == '_');
    }

    /// <summary>
    /// Parses sizes like 4096, 0x1000, 4K, 2M, 1G, 1.5T and sums/differences such as 1G-4K. The result must lie in
    /// [0, <see cref="Limits.MaxSize"/>]: a difference below zero (1G-2G) or a sum beyond 2^63 is not a size.
    /// </summary>
    public static bool TryParseSize(string s, out ulong value)
    {
        value = 0;
        s = s.Trim();
        if (s.Length == 0 || s[^1] is '+' or '-') return false;
        Int128 acc = 0; int sign = 1; int i = 0;
        while (i < s.Length)
        {
            int j = i;
            while (j < s.Length && s[j] != '+' && (s[j] != '-' || j == i)) j++;
            if (!TryParseTerm(s[i..j].Trim(), out var term)) return false;
            acc = sign > 0 ? acc + term : acc - term;
            if (acc > (Int128)ulong.MaxValue * 64 || acc < -(Int128)ulong.MaxValue * 64) return false; // runaway sums of many terms
            if (j < s.Length) { sign = s[j] == '+' ? 1 : -1; }
            i = j + 1;
            if (j == s.Length) break;
        }
        if (acc < 0 || acc > Limits.MaxSize) return false;
        value = (ulong)acc;
        return true;
    }

    private static bool TryParseTerm(string t, out ulong v)
    {
        v = 0;
        if (t.Length == 0) return false;
        if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(t[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out v);
        ulong mult = 1;
        char last = char.ToUpperInvariant(t[^1]);
        if (last is 'K' or 'M' or 'G' or 'T')
        {
            mult = last switch { 'K' => Units.KiB, 'M' => Units.MiB, 'G' => Units.GiB, _ => Units.TiB };
            t = t[..^1];
        }
        if (t.EndsWith('i')) return false;
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || d < 0) return false;
        double r = d * mult;
        if (r != Math.Floor(r) || r > 1.8e19) return false;
        v = (ulong)r;
        return true;
    }

    private sealed class P(string file, List<ScenarioError> errors)
    {
        private SourcePos Pos(YamlNode n) => new(file, (int)n.Start.Line, (int)n.Start.Column);
        private void Err(YamlNode n, string msg, string? hint = null) => errors.Add(new ScenarioError(Pos(n), msg, hint));

        private static string? Scalar(YamlNode? n) => (n as YamlScalarNode)?.Value;

        private static YamlNode? Get(YamlMappingNode m, string key)
        {
            foreach (var kv in m.Children) if (Scalar(kv.Key) == key) return kv.Value;
            return null;
        }

        private void Known(YamlMappingNode m, string where, params string[] keys)
        {
            foreach (var kv in m.Children)
            {
                var k = Scalar(kv.Key);
                if (k is null || !keys.Contains(k))
                    Err(kv.Key, $"unknown key '{k}' in {where}", "known keys: " + string.Join(", ", keys));
            }
        }

        public Scenario? Scenario(YamlMappingNode root)
        {
            Known(root, "the scenario", "name", "description", "mainline", "spec", "kernel", "notes", "host", "processes", "steps");
            string name = Scalar(Get(root, "name")) ?? "";
            if (name.Length == 0) Err(root, "missing 'name'", "add name: <what this scenario shows>");
            string desc = Scalar(Get(root, "description")) ?? "";
            bool mainline = Bool(Get(root, "mainline"), false, "mainline");
            var range = Kernel(Get(root, "kernel"));
            var host = Host(Get(root, "host") as YamlMappingNode, root, range);
            var procs = new List<ProcessSpec>();
            if (Get(root, "processes") is YamlSequenceNode ps)
            {
                foreach (var pn in ps)
                {
                    if (pn is YamlScalarNode s && s.Value is { Length: > 0 } v) procs.Add(new ProcessSpec(v, true));
                    else if (pn is YamlMappingNode pm)
                    {
                        Known(pm, "a process", "name", "sigbus");
                        var pnm = Scalar(Get(pm, "name"));
                        if (pnm is null) { Err(pm, "process without a name", "name: A"); continue; }
                        var sb = Scalar(Get(pm, "sigbus")) ?? "handle";
                        if (sb != "handle" && sb != "default") Err(Get(pm, "sigbus") ?? pm, $"sigbus must be 'handle' or 'default', not '{sb}'");
                        procs.Add(new ProcessSpec(pnm, sb == "handle"));
                    }
                    else Err(pn, "a process is a name or {name, sigbus}");
                }
            }
            else if (Get(root, "processes") is { } bad) Err(bad, "'processes' must be a list", "processes: [A, B]");
            var steps = new List<Step>();
            if (Get(root, "steps") is YamlSequenceNode ss)
            {
                int i = 0;
                foreach (var sn in ss) { var st = StepNode(sn, ++i); if (st is not null) steps.Add(st); }
            }
            else Err(root, "missing 'steps' list", "steps: [ ... ]");
            CheckReferences(procs, steps);
            if (host is null) return null;
            return new Scenario(file, name, desc, mainline, Scalar(Get(root, "spec")), range, Scalar(Get(root, "notes")), host, procs, steps);
        }

        private bool Bool(YamlNode? n, bool dflt, string what)
        {
            if (n is null) return dflt;
            var s = Scalar(n);
            if (s is "true" or "1" or "yes") return true;
            if (s is "false" or "0" or "no") return false;
            Err(n, $"'{what}' must be true or false, not '{s}'");
            return dflt;
        }

        private long Long(YamlNode? n, long dflt, string what)
        {
            if (n is null) return dflt;
            var s = Scalar(n);
            if (s is not null && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= 0) return v;
            Err(n, $"'{what}' must be a non-negative integer, not '{s}'");
            return dflt;
        }

        /// <summary>The scenario's kernel range: "6.6", "&lt;6.6", "&lt;=6.5" or {min, max}.</summary>
        private KernelRange Kernel(YamlNode? n)
        {
            const string hint = "kernel: \"6.6\" (6.6 and later), \"<6.6\" (before 6.6) or {min: \"6.1\", max: \"6.5\"}";
            switch (n)
            {
                case null: return KernelRange.Any;
                case YamlScalarNode sn:
                    if (KernelRange.ParseText(sn.Value ?? "") is { } r) return r;
                    Err(n, $"kernel '{sn.Value}' is not a kernel version or range", hint);
                    return KernelRange.Any;
                case YamlMappingNode m:
                    Known(m, "kernel", "min", "max");
                    System.Version? V(string key)
                    {
                        if (Get(m, key) is not { } x) return null;
                        if (KernelRange.TryVersion(Scalar(x)) is { } v) return v;
                        Err(x, $"kernel.{key} '{Scalar(x)}' is not a kernel version", hint);
                        return null;
                    }
                    var (mn, mx) = (V("min"), V("max"));
                    if (mn is null && mx is null) Err(m, "kernel range without min or max", hint);
                    if (mn is not null && mx is not null && new System.Version(mn.Major, mn.Minor) > new System.Version(mx.Major, mx.Minor))
                        Err(m, $"kernel range min {mn} is above max {mx}", "swap them");
                    return new KernelRange(mn, mx);
                default:
                    Err(n, "'kernel' must be a version or {min, max}", hint);
                    return KernelRange.Any;
            }
        }

        private HostSpec? Host(YamlMappingNode? h, YamlMappingNode root, KernelRange range)
        {
            if (h is null) { Err(root, "missing 'host'", "host: {memory: 8G, hugepages: {1G: 2}}"); return null; }
            Known(h, "host", "memory", "hugepages", "overcommit", "sysctl", "policy", "policy_params", "kernel_version");
            ulong mem = 8 * Units.GiB;
            if (Get(h, "memory") is { } mn)
            {
                if (!TryParseSize(Scalar(mn) ?? "", out mem) || mem < Units.GiB || mem % Units.GiB != 0 || mem > 64 * Units.TiB)
                { Err(mn, $"host memory '{Scalar(mn)}' is not a whole number of GiB between 1G and 64T", "memory: 8G"); mem = 8 * Units.GiB; }
            }
            long h1 = 0, h2 = 0, o1 = 0, o2 = 0;
            if (Get(h, "hugepages") is YamlMappingNode hp) { Known(hp, "host.hugepages", "1G", "2M"); h1 = Long(Get(hp, "1G"), 0, "hugepages.1G"); h2 = Long(Get(hp, "2M"), 0, "hugepages.2M"); }
            if (Get(h, "overcommit") is YamlMappingNode oc) { Known(oc, "host.overcommit", "1G", "2M"); o1 = Long(Get(oc, "1G"), 0, "overcommit.1G"); o2 = Long(Get(oc, "2M"), 0, "overcommit.2M"); }
            if ((ulong)h1 * Units.GiB + (ulong)h2 * 2 * Units.MiB > mem - Units.GiB / 2)
                Err(Get(h, "hugepages") ?? h, $"hugepages ({h1} x 1G + {h2} x 2M) leave less than 512M of the {Units.Size(mem)} host for the kernel", "raise host.memory or lower hugepages");
            bool early = false, recovery = true;
            if (Get(h, "sysctl") is YamlMappingNode sc)
            {
                Known(sc, "host.sysctl", "vm.memory_failure_early_kill", "vm.memory_failure_recovery");
                early = Bool(Get(sc, "vm.memory_failure_early_kill"), false, "vm.memory_failure_early_kill");
                recovery = Bool(Get(sc, "vm.memory_failure_recovery"), true, "vm.memory_failure_recovery");
            }
            string policy = Scalar(Get(h, "policy")) ?? "mainline";
            if (!RecoveryPolicies.Exists(policy)) Err(Get(h, "policy") ?? h, $"unknown policy '{policy}'", "known: " + string.Join(", ", RecoveryPolicies.Names));
            var pp = new Dictionary<string, string>();
            if (Get(h, "policy_params") is YamlMappingNode ppn)
            {
                foreach (var kv in ppn.Children) pp[Scalar(kv.Key) ?? ""] = Scalar(kv.Value) ?? "";
                // each value through the policy's own parameter description (RecoveryPolicies.Describe)
                if (RecoveryPolicies.Exists(policy))
                    foreach (var (key, onValue, msg, hint) in RecoveryPolicies.CheckParameters(policy, pp))
                    {
                        var at = ppn.Children.FirstOrDefault(kv => Scalar(kv.Key) == key);
                        Err((onValue ? at.Value : at.Key) ?? ppn, msg, hint);
                    }
            }
            else if (Get(h, "policy_params") is { } bad) Err(bad, "'policy_params' must be a mapping", "policy_params: {fallback: hgm}");
            var kv2 = range.DefaultVersion() ?? KernelRange.DefaultModel;
            var kvn = Get(h, "kernel_version");
            if (kvn is not null)
            {
                if (System.Version.TryParse(Scalar(kvn), out var parsed))
                {
                    kv2 = parsed;
                    if (!range.Contains(parsed)) Err(kvn, $"kernel_version {parsed} is outside the scenario's kernel range {range}", "set a version inside 'kernel:' or widen the range");
                }
                else Err(kvn, $"kernel_version '{Scalar(kvn)}' is not a version", "kernel_version: 6.12");
            }
            else if (range.DefaultVersion() is null)
                Err(h, $"the kernel range {range} excludes the model's default kernel {KernelRange.DefaultModel}", "set host.kernel_version to a version inside the range");
            return new HostSpec(mem, h1, h2, o1, o2, early, recovery, policy, pp, kv2);
        }

        private Step? StepNode(YamlNode sn, int index)
        {
            if (sn is not YamlMappingNode m) { Err(sn, "a step is a mapping like '- mmap: {...}'"); return null; }
            string? op = null; YamlNode? argsNode = null; Expect? expect = null; string? note = null;
            List<(KernelRange, Expect)>? kexp = null;
            foreach (var kv in m.Children)
            {
                var k = Scalar(kv.Key) ?? "";
                if (k == "expect") { expect = ExpectNode(kv.Value); continue; }
                if (k == "expect_kernel") { kexp = KernelExpectNode(kv.Value); continue; }
                if (k == "note") { note = Scalar(kv.Value); continue; }
                if (op is not null) { Err(kv.Key, $"step {index} has two operations ('{op}' and '{k}')", "one operation per step; put expectations under 'expect:'"); continue; }
                if (!Ops.ContainsKey(k)) { Err(kv.Key, $"unknown operation '{k}'", "known: " + string.Join(", ", Ops.Keys)); return null; }
                op = k; argsNode = kv.Value;
            }
            if (op is null) { Err(m, $"step {index} has no operation", "e.g. '- load: {as: A, map: a, offset: 0, length: 4K}'"); return null; }
            var args = new Dictionary<string, Arg>();
            var (req, opt, _) = Ops[op];
            if (argsNode is YamlMappingNode am)
            {
                foreach (var kv in am.Children)
                {
                    var k = Scalar(kv.Key) ?? "";
                    if (!req.Contains(k) && !opt.Contains(k)) { Err(kv.Key, $"'{op}' has no argument '{k}'", "arguments: " + string.Join(", ", req.Concat(opt))); continue; }
                    if (kv.Value is YamlSequenceNode seq) args[k] = new Arg(Pos(kv.Value), string.Join("|", seq.Select(Scalar)), seq.Select(x => Scalar(x) ?? "").ToList());
                    else if (kv.Value is YamlScalarNode sv) args[k] = new Arg(Pos(kv.Value), sv.Value ?? "");
                    else Err(kv.Value, $"argument '{k}' must be a value or a list");
                }
            }
            else if (argsNode is YamlScalarNode { Value: "" or null } && req.Length == 0) { }
            else if (argsNode is not null && !(argsNode is YamlScalarNode { Value: "" or null })) Err(argsNode, $"arguments of '{op}' must be a mapping", $"- {op}: {{{string.Join(", ", req.Select(r => r + ": ..."))}}}");
            foreach (var r in req) if (!args.ContainsKey(r)) Err(argsNode ?? m, $"'{op}' needs argument '{r}'", Ops[op].Doc);
            return new Step(index, Pos(m), op, args, expect, note) { KernelExpects = kexp, Call = BuildOp(op, args, errors) };
        }

        /// <summary><c>expect_kernel: [{kernel: "&lt;6.11", signals: []}, …]</c>: per-kernel replacements of expectation keys.</summary>
        private List<(KernelRange, Expect)>? KernelExpectNode(YamlNode n)
        {
            if (n is not YamlSequenceNode seq) { Err(n, "'expect_kernel' must be a list", "expect_kernel: [{kernel: \"<6.11\", signals: []}]"); return null; }
            var list = new List<(KernelRange, Expect)>();
            foreach (var x in seq)
            {
                if (x is not YamlMappingNode xm || Get(xm, "kernel") is not { } kn) { Err(x, "an expect_kernel entry needs 'kernel:' and expectation keys"); continue; }
                var range = Kernel(kn);
                var rest = new YamlMappingNode(xm.Children.Where(kv => Scalar(kv.Key) != "kernel"));
                if (ExpectNode(rest) is { } e) list.Add((range, e));
            }
            return list;
        }

        private Expect? ExpectNode(YamlNode n)
        {
            if (n is not YamlMappingNode m) { Err(n, "'expect' must be a mapping", "expect: {ret: 0}"); return null; }
            Known(m, "expect", ExpectKeys);
            long? ret = null; string? errno = null; NumExpect? retRule = null; List<string>? errnos = null;
            if (Get(m, "ret") is YamlMappingNode rm) retRule = NumRule(rm, "ret");
            else if (Get(m, "ret") is { } rn) { if (long.TryParse(Scalar(rn), out var rv)) ret = rv; else if (TryParseSize(Scalar(rn) ?? "", out var rs)) ret = (long)rs; else Err(rn, $"ret '{Scalar(rn)}' is not a number", "ret: 0, or ret: {at_least: 1}, {one_of: [0, -1]}"); }
            if (Get(m, "errno") is YamlSequenceNode es)
            {
                errnos = es.Select(x => Scalar(x) ?? "").ToList();
                foreach (var x in es) if (Scalar(x) != "none" && Errno.Parse(Scalar(x) ?? "") is null) Err(x, $"unknown errno '{Scalar(x)}'", "e.g. EIO, EINVAL, ENOMEM, EFAULT, EHWPOISON, or none (success)");
            }
            else if (Get(m, "errno") is { } en) { errno = Scalar(en); if (errno is null || Errno.Parse(errno) is null) Err(en, $"unknown errno '{errno}'", "e.g. EIO, EINVAL, ENOMEM, EFAULT, EHWPOISON"); }
            List<SignalExpect>? sigs = null; bool exact = false;
            var sn = Get(m, "signals"); var si = Get(m, "signals_include");
            if (sn is not null && si is not null) Err(si, "use either 'signals' (exact) or 'signals_include', not both");
            var sigNode = sn ?? si;
            if (sigNode is not null)
            {
                exact = sn is not null;
                sigs = new List<SignalExpect>();
                if (sigNode is YamlSequenceNode seq)
                {
                    foreach (var x in seq)
                    {
                        if (x is not YamlMappingNode xm) { Err(x, "a signal is a mapping {to, si_code, si_addr, si_addr_lsb}"); continue; }
                        Known(xm, "a signal", "to", "signo", "si_code", "si_addr", "si_addr_lsb");
                        var to = Scalar(Get(xm, "to"));
                        if (to is null) { Err(xm, "signal without 'to'", "to: A"); continue; }
                        var signo = Scalar(Get(xm, "signo")) ?? "SIGBUS";
                        if (signo is not ("SIGBUS" or "SIGSEGV" or "SIGKILL")) Err(Get(xm, "signo") ?? xm, $"unknown signo '{signo}'", "SIGBUS, SIGSEGV or SIGKILL");
                        int? lsb = null;
                        if (Get(xm, "si_addr_lsb") is { } ln) { if (int.TryParse(Scalar(ln), out var lv) && lv >= 0 && lv < 64) lsb = lv; else Err(ln, $"si_addr_lsb '{Scalar(ln)}' must be 0..63"); }
                        var code = Scalar(Get(xm, "si_code"));
                        if (code is not null && code is not ("BUS_MCEERR_AR" or "BUS_MCEERR_AO" or "BUS_ADRERR" or "BUS_ADRALN" or "BUS_OBJERR" or "SEGV_MAPERR" or "SEGV_ACCERR"))
                            Err(Get(xm, "si_code") ?? xm, $"unknown si_code '{code}'", "BUS_MCEERR_AR, BUS_MCEERR_AO, BUS_ADRERR, SEGV_MAPERR, SEGV_ACCERR");
                        sigs.Add(new SignalExpect(Pos(xm), to, signo, code, Scalar(Get(xm, "si_addr")), lsb));
                    }
                }
                else if (!(sigNode is YamlScalarNode { Value: "[]" or "none" or "" }))
                    Err(sigNode, "'signals' must be a list ([] for none)");
            }
            Dictionary<string, long>? mi = null;
            var rules = new Dictionary<string, NumExpect>();
            if (Get(m, "meminfo") is YamlMappingNode mm)
            {
                mi = new();
                Known(mm, "expect.meminfo", "HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp", "HardwareCorrupted", "PageTables");
                foreach (var kv in mm.Children)
                {
                    if (kv.Value is YamlMappingNode rule) { if (NumRule(rule, Scalar(kv.Key) ?? "") is { } r) rules[Scalar(kv.Key) ?? ""] = r; }
                    else mi[Scalar(kv.Key) ?? ""] = Long(kv.Value, 0, Scalar(kv.Key) ?? "");
                }
            }
            Dictionary<string, HugepageExpect>? hp = null;
            if (Get(m, "hugepages") is YamlMappingNode hm)
            {
                hp = new();
                Known(hm, "expect.hugepages", "1G", "2M");
                foreach (var kv in hm.Children)
                {
                    if (kv.Value is not YamlMappingNode cm) { Err(kv.Value, "hugepages.<size> is {total, free, resv, surp}"); continue; }
                    Known(cm, $"expect.hugepages.{Scalar(kv.Key)}", "total", "free", "resv", "surp");
                    long? G(string k)
                    {
                        if (Get(cm, k) is YamlMappingNode rule) { if (NumRule(rule, k) is { } r) rules[$"{Scalar(kv.Key)}.{k}"] = r; return null; }
                        return Get(cm, k) is { } x ? Long(x, 0, k) : null;
                    }
                    hp[Scalar(kv.Key) ?? ""] = new HugepageExpect(G("total"), G("free"), G("resv"), G("surp"));
                }
            }
            List<string>? Strs(string key)
            {
                var x = Get(m, key);
                if (x is null) return null;
                if (x is YamlSequenceNode s) return s.Select(y => Scalar(y) ?? "").ToList();
                if (x is YamlScalarNode v) return [v.Value ?? ""];
                Err(x, $"'{key}' must be a string or a list of strings"); return null;
            }
            Dictionary<string, bool>? alive = null;
            if (Get(m, "alive") is YamlMappingNode alm) { alive = new(); foreach (var kv in alm.Children) alive[Scalar(kv.Key) ?? ""] = Bool(kv.Value, true, "alive"); }
            List<string>? outcomes = Get(m, "outcome") is YamlSequenceNode os ? os.Select(x => Scalar(x) ?? "").ToList() : null;
            NumExpect? doneRule = Get(m, "done") is YamlMappingNode dm ? NumRule(dm, "done") : null;
            string? data = Scalar(Get(m, "data"));
            if (data is not null && !Pattern.TryParse(data, out _)) Err(Get(m, "data") ?? m, $"data '{data}' is not a pattern", "use p1, p1@0x1000 or zero");
            bool? panic = Get(m, "panic") is { } pn ? Bool(pn, false, "panic") : null;
            long? done = null;
            if (Get(m, "done") is YamlScalarNode dn) { if (TryParseSize(Scalar(dn) ?? "", out var dv)) done = (long)dv; else Err(dn, "'done' must be a size"); }
            Dictionary<string, string>? Map(string key)
            {
                if (Get(m, key) is not { } x) return null;
                if (x is not YamlMappingNode xm) { Err(x, $"'{key}' must be a mapping"); return null; }
                return xm.Children.ToDictionary(kv => Scalar(kv.Key) ?? "", kv => Scalar(kv.Value) ?? "");
            }
            var guest = Map("guest");
            if (guest is not null)
                foreach (var k in guest.Keys) if (k is not ("vm" or "alive" or "mces" or "offlined" or "killed" or "panicked" or "qemu_exited" or "poison_list" or "memory_lost"))
                    Err(Get(m, "guest") ?? m, $"unknown key '{k}' in expect.guest", "vm, alive, mces, offlined, killed, panicked, qemu_exited, poison_list, memory_lost");
            var mig = Map("migration");
            if (mig is not null)
                foreach (var k in mig.Keys) if (k is not ("refused" or "granule" or "fake_poisoned" or "poison_set" or "faults"))
                    Err(Get(m, "migration") ?? m, $"unknown key '{k}' in expect.migration", "refused, granule, fake_poisoned, poison_set, faults");
            return new Expect(Pos(m), ret, errno, sigs, exact, mi, hp, Strs("log"), Strs("no_log"), data, Scalar(Get(m, "outcome")), alive, panic, done)
            {
                Trace = Strs("trace"), Guest = guest, Migration = mig, RetRule = retRule, ErrnoOneOf = errnos, OutcomeOneOf = outcomes, DoneRule = doneRule,
                CounterRules = rules.Count > 0 ? rules : null, PageFlags = PageFlagsNode(Get(m, "kpageflags")), Pfn = PfnNode(Get(m, "pfn")), Dead = DeadNode(Get(m, "dead")),
            };
        }

        /// <summary>{at_least: N, at_most: N} or {one_of: [a, b]} (sizes allowed).</summary>
        private NumExpect? NumRule(YamlMappingNode m, string what)
        {
            Known(m, what, "at_least", "at_most", "one_of");
            long? V(YamlNode? x)
            {
                if (x is null) return null;
                var t = Scalar(x) ?? "";
                if (long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)) return v;
                if (TryParseSize(t, out var u)) return (long)u;
                Err(x, $"{what}: '{t}' is not a number"); return null;
            }
            List<long>? oneOf = null;
            if (Get(m, "one_of") is YamlSequenceNode seq) oneOf = seq.Select(V).Where(v => v is not null).Select(v => v!.Value).ToList();
            else if (Get(m, "one_of") is { } bad) Err(bad, $"{what}.one_of must be a list", "one_of: [0, -1]");
            var r = new NumExpect(V(Get(m, "at_least")), V(Get(m, "at_most")), oneOf);
            if (r.AtLeast is null && r.AtMost is null && r.OneOf is null) { Err(m, $"{what}: a rule needs at_least, at_most or one_of"); return null; }
            return r;
        }

        private List<PageFlagsExpect>? PageFlagsNode(YamlNode? n)
        {
            if (n is null) return null;
            if (n is not YamlSequenceNode seq) { Err(n, "'kpageflags' must be a list", "kpageflags: [{pfn: $p, has: [HWPOISON], lacks: [HUGE]}]"); return null; }
            var list = new List<PageFlagsExpect>();
            foreach (var x in seq)
            {
                if (x is not YamlMappingNode xm) { Err(x, "a kpageflags entry is {pfn, has, lacks}"); continue; }
                Known(xm, "a kpageflags entry", "pfn", "has", "lacks");
                var pfn = Scalar(Get(xm, "pfn")) ?? "";
                if (!TryPfnRef(pfn, out var v, out var add)) { Err(Get(xm, "pfn") ?? xm, $"kpageflags pfn '{pfn}' is not a saved pfn", "pfn: $p or $p+5 (set $p with pfn_of)"); continue; }
                List<string> Flags(string key)
                {
                    var l = Get(xm, key) is YamlSequenceNode fs ? fs.Select(y => Scalar(y) ?? "").ToList() : Get(xm, key) is YamlScalarNode one ? [one.Value ?? ""] : [];
                    foreach (var fl in l) if (!PageFlagsExpect.Bits.ContainsKey(fl)) Err(Get(xm, key) ?? xm, $"unknown page flag '{fl}'", "known: " + string.Join(", ", PageFlagsExpect.Bits.Keys));
                    return l;
                }
                list.Add(new PageFlagsExpect(Pos(xm), v, add, Flags("has"), Flags("lacks")));
            }
            return list;
        }

        private PfnExpect? PfnNode(YamlNode? n)
        {
            if (n is null) return null;
            if (n is YamlMappingNode m)
            {
                Known(m, "expect.pfn", "changed_from", "same_as");
                var (key, changed) = Get(m, "changed_from") is not null ? ("changed_from", true) : ("same_as", false);
                var t = Scalar(Get(m, key)) ?? "";
                if (t.StartsWith('$') && t.Length > 1) return new PfnExpect(Pos(m), t[1..], changed);
            }
            Err(n, "'pfn' is {changed_from: $p} or {same_as: $p}");
            return null;
        }

        private Dictionary<string, string>? DeadNode(YamlNode? n)
        {
            if (n is null) return null;
            if (n is not YamlMappingNode m) { Err(n, "'dead' must be a mapping", "dead: {B: SIGBUS}"); return null; }
            var d = new Dictionary<string, string>();
            foreach (var kv in m.Children)
            {
                var how = Scalar(kv.Value) ?? "";
                if (how is not ("SIGBUS" or "SIGKILL" or "SIGSEGV" or "exit" or "alive")) Err(kv.Value, $"dead: '{how}' is not SIGBUS, SIGKILL, SIGSEGV, exit or alive");
                d[Scalar(kv.Key) ?? ""] = how;
            }
            return d;
        }

        /// <summary>Static checks: processes, fds, mappings and variables are defined before use.</summary>
        private void CheckReferences(List<ProcessSpec> procs, List<Step> steps)
        {
            var known = new HashSet<string>(procs.Select(p => p.Name));
            var maps = new HashSet<string>(); var fds = new HashSet<string>(); var vars = new HashSet<string>(); var vms = new HashSet<string>(); var shms = new HashSet<string>();
            var vcpus = new Dictionary<string, int>();
            ulong smallPageRam = 0; // guest RAM on 4 KiB pages, all VMs
            foreach (var s in steps)
            {
                void Need(string key, HashSet<string> set, string what, string hint)
                {
                    if (s.Args.TryGetValue(key, out var a) && !set.Contains(a.Text))
                        errors.Add(new ScenarioError(a.Pos, $"{what} '{a.Text}' is not defined before step {s.Index}", hint));
                }
                Need("as", known, "process", "list it under 'processes:' or create it with fork");
                if (s.Op is not "mmap") Need("map", maps, "mapping", "create it with mmap {name: ...}");
                if (s.Op is not ("memfd_create" or "open" or "userfaultfd")) Need("fd", fds, "fd", "create it with memfd_create/open {fd: ...}");
                Need("uffd", fds, "userfaultfd", "create it with userfaultfd {fd: ...}");
                if (s.Args.TryGetValue("pfn", out var pv) && pv.Text.StartsWith('$') && !vars.Contains(pv.Text[1..]))
                    errors.Add(new ScenarioError(pv.Pos, $"variable '{pv.Text}' is not set before step {s.Index}", "set it with pfn_of {save: name}"));
                if (s.Op == "fork" && s.Args.TryGetValue("child", out var c)) known.Add(c.Text);
                if (s.Op == "thread" && s.Args.TryGetValue("name", out var tn) && !known.Add(tn.Text))
                    errors.Add(new ScenarioError(tn.Pos, $"thread name '{tn.Text}' is already a process or thread", "give each thread its own name"));
                if (s.Op is "shmat" or "shm_rmid") Need("shm", shms, "SysV segment", "create it with shmget {shm: ...}");
                if (s.Op == "shmget" && s.Args.TryGetValue("shm", out var sh)) shms.Add(sh.Text);
                if (s.Op == "shmat" && s.Args.TryGetValue("name", out var sn)) { if (!maps.Add(sn.Text)) errors.Add(new ScenarioError(sn.Pos, $"mapping name '{sn.Text}' is used twice", "give each attach its own name")); }
                string? own = s.Op == "pfn_of" && s.Args.TryGetValue("save", out var ov) ? ov.Text : null; // kpageflags may read the pfn the step saves
                foreach (var pf in s.Expect?.PageFlags ?? [])
                    if (!vars.Contains(pf.Var) && pf.Var != own) errors.Add(new ScenarioError(pf.Pos, $"variable '${pf.Var}' is not set before step {s.Index}", "set it with pfn_of {save: name}"));
                if (s.Expect?.Pfn is { } pe && !vars.Contains(pe.Var)) errors.Add(new ScenarioError(pe.Pos, $"variable '${pe.Var}' is not set before step {s.Index}", "set it with an earlier pfn_of {save: name}"));
                if (s.Op == "vm_create" && s.Args.TryGetValue("name", out var vn))
                {
                    if (!known.Add(vn.Text)) errors.Add(new ScenarioError(vn.Pos, $"vm name '{vn.Text}' is already a process, thread or VM", "give each vm_create its own name"));
                    vms.Add(vn.Text); maps.Add(vn.Text + ".ram");
                    ulong smallBefore = smallPageRam; // the limit is reported once, at the VM that crosses it
                    if (s.Call is VmCreateOp { PageSize: Units.PAGE_SIZE } small && smallBefore <= Limits.MaxSmallPageGuestRam
                        && (smallPageRam += Math.Min(small.Ram, Limits.MaxSmallPageGuestRam + 1)) > Limits.MaxSmallPageGuestRam)
                        errors.Add(new ScenarioError(s.Args.TryGetValue("ram", out var sr) ? sr.Pos : vn.Pos,
                            $"guest RAM on 4K pages adds up to more than {Units.Size(Limits.MaxSmallPageGuestRam)} (the model keeps every 4 KiB page of it as a folio)", "use page_size: 2M or 1G for larger guests"));
                    int nv = s.Call is VmCreateOp vco ? vco.Vcpus : 1;
                    vcpus[vn.Text] = nv;
                    for (int i = 0; i < nv; i++) known.Add($"{vn.Text}/vcpu{i}");
                }
                int? vcpu = s.Call switch { GuestAccessOp g => g.Vcpu, GuestTouchOp g => g.Vcpu, _ => null };
                if (vcpu is { } vi && s.Args.TryGetValue("vm", out var vmv) && vcpus.TryGetValue(vmv.Text, out var have) && vi >= have)
                    errors.Add(new ScenarioError(s.Args.TryGetValue("vcpu", out var va) ? va.Pos : s.Pos, $"vcpu {vi} of vm '{vmv.Text}', which has {have} vCPU(s)", $"use vcpu 0..{have - 1} or raise vcpus in vm_create"));
                if (s.Op is "guest_access" or "guest_touch" or "vm_reset" or "migrate" && s.Args.TryGetValue("vm", out var vr) && !vms.Contains(vr.Text))
                    errors.Add(new ScenarioError(vr.Pos, $"vm '{vr.Text}' is not created before step {s.Index}", "create it with vm_create {name: ...}"));
                if (s.Op == "mmap" && s.Args.TryGetValue("name", out var n)) { if (!maps.Add(n.Text)) errors.Add(new ScenarioError(n.Pos, $"mapping name '{n.Text}' is used twice", "give each mmap its own name")); }
                if (s.Op is "memfd_create" or "open" or "userfaultfd" && s.Args.TryGetValue("fd", out var f)) fds.Add(f.Text);
                if (s.Op == "pfn_of" && s.Args.TryGetValue("save", out var sv)) vars.Add(sv.Text);
                if (s.Op == "hw_error" && !s.Args.ContainsKey("phys") && !s.Args.ContainsKey("pfn") && !(s.Args.ContainsKey("map") && s.Args.ContainsKey("as")) && !(s.Args.ContainsKey("fd") && s.Args.ContainsKey("as")))
                    errors.Add(new ScenarioError(s.Pos, "hw_error needs a place: phys, pfn (+offset), as+map+offset, or as+fd+offset"));
                if (s.Op == "hw_error" && s.Args.TryGetValue("detect", out var d) && d.Text == "consume" && !s.Args.ContainsKey("as"))
                    errors.Add(new ScenarioError(d.Pos, "detect: consume needs 'as' (the process whose load consumes the poison)"));
                if (s.Op is "corrupt_pfn" or "unpoison_pfn" && !s.Args.ContainsKey("pfn") && !(s.Args.ContainsKey("map") && s.Args.ContainsKey("as")))
                    errors.Add(new ScenarioError(s.Pos, $"{s.Op} needs pfn: $var or as+map+offset"));
            }
        }
    }
}

/// <summary>A data pattern reference: a named pattern at an optional explicit pattern offset, or zeros.</summary>
public readonly record struct Pattern(string Name, long? At)
{
    public bool IsZero => Name is null or "zero";
    public ulong Seed => IsZero ? ContentTag.Zero : ContentTag.PatternSeed(Name);

    public static bool TryParse(string s, out Pattern p)
    {
        p = default;
        if (string.IsNullOrWhiteSpace(s)) return false;
        int at = s.IndexOf('@');
        string name = at < 0 ? s : s[..at];
        if (name.Length == 0 || !name.All(c => char.IsLetterOrDigit(c) || c == '_' || c == '-')) return false;
        long? off = null;
        if (at >= 0) { if (!ScenarioParser.TryParseSize(s[(at + 1)..], out var o)) return false; off = (long)o; }
        p = new Pattern(name, off);
        return true;
    }
}

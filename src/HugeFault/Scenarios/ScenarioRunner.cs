using System.Globalization;
using HugeFault.Mm;
using HugeFault.Virt;

namespace HugeFault.Scenarios;

/// <summary>The result of one step: what it returned, the trace events it caused, and failed expectations.</summary>
public sealed record StepOutcome(Step Step, string Summary, int TraceStart, int TraceEnd, IReadOnlyList<string> Failures, bool Skipped = false)
{
    /// <summary>Processes that died during the step, and how ("SIGBUS", "SIGKILL", "exit").</summary>
    public IReadOnlyDictionary<string, string> Deaths { get; init; } = new Dictionary<string, string>();
    /// <summary>kpageflags read after the step for the step's kpageflags expectations ("$x+5" → flags).</summary>
    public IReadOnlyDictionary<string, ulong> PageFlags { get; init; } = new Dictionary<string, ulong>();
}

/// <summary>A whole scenario run under one policy.</summary>
public sealed record ScenarioRun(Scenario Scenario, string Policy, Kernel Kernel, IReadOnlyList<StepOutcome> Steps)
{
    /// <summary>The VMs the scenario created, by name.</summary>
    public IReadOnlyDictionary<string, Vm> Vms { get; init; } = new Dictionary<string, Vm>();
    /// <summary>Live migrations the scenario ran, in order.</summary>
    public IReadOnlyList<MigrationResult> Migrations { get; init; } = [];
    public bool Passed => Steps.All(s => s.Failures.Count == 0);
    public IEnumerable<string> Failures => Steps.SelectMany(s => s.Failures.Select(f => $"{Scenario.File}:{s.Step.Pos.Line}: step {s.Step.Index} ({s.Step.Op}): {f}"));
}

/// <summary>Runs a validated scenario on the kernel model and checks its expectations.</summary>
public sealed partial class ScenarioRunner
{
    private readonly Scenario _sc;
    private readonly Kernel _k;
    private readonly Dictionary<string, TaskStruct> _procs = new();
    private readonly Dictionary<string, (ulong Va, ulong Len)> _maps = new();
    private readonly Dictionary<(string Proc, string Fd), int> _fds = new();
    private readonly Dictionary<string, ulong> _vars = new();
    private readonly List<(TaskStruct T, ulong Va, ulong Len, bool Write, ulong Seed, long Po, ulong Done)> _blocked = new();
    private readonly Dictionary<string, Vm> _vms = new();
    private readonly List<MigrationResult> _migrations = new();
    private MigrationResult? _lastMigration;
    private ContentCheck? _lastCheck;
    private long _lastRet; private int _lastErrno; private AccessResult? _lastAccess;

    private ScenarioRunner(Scenario sc, string? policy, IReadOnlyDictionary<string, string>? policyParams)
    {
        sc = sc.ForKernel(sc.Host.KernelVersion); // the expectations of the kernel the model follows
        _sc = sc;
        var h = sc.Host;
        var pp = new Dictionary<string, string>(h.PolicyParams);
        if (policyParams is not null) foreach (var kv in policyParams) pp[kv.Key] = kv.Value;
        _k = new Kernel(new KernelConfig
        {
            MemoryBytes = h.Memory, HugePages1G = h.HugePages1G, HugePages2M = h.HugePages2M,
            Overcommit1G = h.Overcommit1G, Overcommit2M = h.Overcommit2M,
            MemoryFailureEarlyKill = h.EarlyKill, MemoryFailureRecovery = h.Recovery,
            Policy = policy ?? h.Policy, PolicyParams = pp, KernelVersion = h.KernelVersion,
        });
        foreach (var p in sc.Processes)
        {
            var t = _k.Spawn(p.Name);
            t.Sigbus = p.SigbusHandled ? SigbusDisposition.Handle : SigbusDisposition.Default;
            _procs[p.Name] = t;
        }
        _k.FlushCounters();
    }

    /// <summary>
    /// Runs the scenario under its own policy, or under <paramref name="policy"/> when given. <paramref name="afterStep"/>
    /// is a report hook: called after every step that ran (its expectations checked), with the kernel as the step left
    /// it, e.g. to picture the page tables just after an error; it must only observe the kernel.
    /// </summary>
    public static ScenarioRun Run(Scenario sc, string? policy = null, IReadOnlyDictionary<string, string>? policyParams = null, Action<Step, Kernel>? afterStep = null)
    {
        var r = new ScenarioRunner(sc, policy, policyParams) { _afterStep = afterStep };
        return r.RunAll();
    }

    private Action<Step, Kernel>? _afterStep;

    private ScenarioRun RunAll()
    {
        var outcomes = new List<StepOutcome>();
        foreach (var s in _sc.Steps)
        {
            if (_k.Panicked)
            {
                outcomes.Add(new StepOutcome(s, "skipped: the host panicked", _k.Trace.Count, _k.Trace.Count,
                    s.Expect is { } && s.Expect.Panic != true ? ["the host panicked before this step"] : [], Skipped: true));
                continue;
            }
            _k.Tick();
            int start = _k.Trace.Count;
            _lastCheck = null; _lastAccess = null; _lastRet = 0; _lastErrno = 0; _lastMigration = null;
            string? missing = MissingReference(s);
            // a step of a process that has died is skipped (its expectations, e.g. dead:, still hold or not)
            string? dead = s.As is { } who && _procs.TryGetValue(who, out var wt) && !wt.Alive && s.Op != "exit" ? $"process '{who}' is dead ({wt.ExitReason})" : null;
            var aliveBefore = _procs.Where(p => p.Value.Alive).Select(p => p.Key).ToList();
            string summary = dead is not null ? "skipped: " + dead : missing is null ? Exec(s) : "skipped: " + missing;
            _k.FlushCounters();
            int end = _k.Trace.Count;
            var failures = s.Expect is null ? new List<string>() : Check(s, s.Expect, start, end);
            if (missing is not null && dead is null) failures.Insert(0, "could not run: " + missing);
            var deaths = aliveBefore.Where(p => !_procs[p].Alive).ToDictionary(p => p, p => DeathOf(_procs[p]));
            var flags = new Dictionary<string, ulong>();
            foreach (var pf in s.Expect?.PageFlags ?? [])
                if (_vars.TryGetValue(pf.Var, out var v)) flags[pf.Where] = _k.StablePageFlags(v + (ulong)pf.PageOffset);
            outcomes.Add(new StepOutcome(s, summary, start, end, failures) { Deaths = deaths, PageFlags = flags });
            _afterStep?.Invoke(s, _k);
        }
        return new ScenarioRun(_sc, _k.Policy.Name, _k, outcomes) { Vms = _vms, Migrations = _migrations };
    }

    /// <summary>A mapping, fd or process named by the step that an earlier failed step did not create.</summary>
    private string? MissingReference(Step s)
    {
        if (s.As is { } a && !_procs.ContainsKey(a)) return $"process '{a}' does not exist";
        if (s.As is { } p && !_procs[p].Alive && s.Op != "exit") return $"process '{p}' is dead ({_procs[p].ExitReason})";
        if (s.Args.TryGetValue("vm", out var vmArg) && !_vms.ContainsKey(vmArg.Text)) return $"vm '{vmArg.Text}' was not created";
        if (s.Op is not ("memfd_create" or "open" or "userfaultfd") && s.Args.TryGetValue("fd", out var f) && !_fds.ContainsKey((s.As ?? "", f.Text))) return $"fd '{f.Text}' was not created (its open failed)";
        if (s.Args.TryGetValue("uffd", out var u) && !_fds.ContainsKey((s.As ?? "", u.Text))) return $"userfaultfd '{u.Text}' was not created";
        return null;
    }

    private TaskStruct Proc(Step s) => _procs[s.As!];
    private string A(Step s, string k) => s.Args[k].Text;
    private long Value(Step s) => long.TryParse(A(s, "value"), out var v) ? v : (long)Size(s, "value");
    private bool Has(Step s, string k) => s.Args.ContainsKey(k);
    private ulong Size(Step s, string k, ulong dflt = 0) => Has(s, k) && ScenarioParser.TryParseSize(A(s, k), out var v) ? v : dflt;
    private int Fd(Step s, string k = "fd") => _fds.TryGetValue((s.As ?? "", A(s, k)), out var fd) ? fd : -1;

    private int Flags(Step s, string k, Func<string, int> map)
    {
        int f = 0;
        if (!s.Args.TryGetValue(k, out var a)) return 0;
        foreach (var v in a.List ?? [a.Text]) f |= map(v);
        return f;
    }

    private string Sys(Step s, string call, string args, SysResult r)
    {
        _lastRet = r.Ret; _lastErrno = r.Errno;
        _k.Emit(new SyscallEvent(_k.NowNs, s.As ?? "-", call, args, r.Ret, r.Errno));
        return r.Failed ? $"{call} = -1 {Errno.Name(r.Errno)}" : $"{call} = {(r.Ret > 4096 ? Units.Hex((ulong)r.Ret) : r.Ret.ToString())}";
    }

    private (ulong Va, ulong Len) Map(Step s) => _maps[A(s, "map")];

    private string Exec(Step s)
    {
        // a mapping can be declared by an mmap step that failed at run time: report it, do not crash
        if (s.Op != "mmap" && s.Args.TryGetValue("map", out var mapArg) && !_maps.ContainsKey(mapArg.Text))
            return Sys(s, s.Op, $"{mapArg.Text}: no such mapping (its mmap failed)", SysResult.Err(Errno.EFAULT));
        switch (s.Op)
        {
            case "memfd_create":
            {
                uint fl = (uint)Flags(s, "flags", v => v switch
                {
                    "MFD_CLOEXEC" => (int)Memfd.MFD_CLOEXEC, "MFD_ALLOW_SEALING" => (int)Memfd.MFD_ALLOW_SEALING, "MFD_HUGETLB" => (int)Memfd.MFD_HUGETLB,
                    "MFD_HUGE_2MB" => (int)Memfd.MFD_HUGE_2MB, "MFD_HUGE_1GB" => (int)Memfd.MFD_HUGE_1GB, "MFD_MF_KEEP_UE_MAPPED" => (int)Memfd.MFD_MF_KEEP_UE_MAPPED, _ => 0,
                });
                var r = _k.MemfdCreate(Proc(s), A(s, "name"), fl);
                if (!r.Failed) SetFd(s, (int)r.Ret);
                return Sys(s, "memfd_create", $"\"{A(s, "name")}\", {(Has(s, "flags") ? A(s, "flags") : "0")}", r);
            }
            case "open":
            {
                var r = _k.OpenFile(Proc(s), A(s, "path"), !Has(s, "create") || A(s, "create") != "false");
                if (!r.Failed) SetFd(s, (int)r.Ret);
                return Sys(s, "open", $"\"{A(s, "path")}\", O_RDWR|O_CREAT", r);
            }
            case "close": return Sys(s, "close", A(s, "fd"), _k.Close(Proc(s), Fd(s)));
            case "unlink": return Sys(s, "unlink", A(s, "path"), _k.Unlink(A(s, "path")));
            case "ftruncate": return Sys(s, "ftruncate", $"{A(s, "fd")}, {A(s, "length")}", _k.Ftruncate(Proc(s), Fd(s), (long)Size(s, "length")));
            case "fallocate":
            {
                int mode = Flags(s, "mode", v => v == "FALLOC_FL_KEEP_SIZE" ? Memfd.FALLOC_FL_KEEP_SIZE : Memfd.FALLOC_FL_PUNCH_HOLE);
                return Sys(s, "fallocate", $"{A(s, "fd")}, {(Has(s, "mode") ? A(s, "mode") : "0")}, {A(s, "offset")}, {A(s, "length")}", _k.Fallocate(Proc(s), Fd(s), mode, Size(s, "offset"), Size(s, "length")));
            }
            case "lseek":
            {
                int wh = Has(s, "whence") ? A(s, "whence") switch { "SEEK_CUR" => 1, "SEEK_END" => 2, _ => 0 } : 0;
                long off = long.TryParse(A(s, "offset"), out var lo) ? lo : (long)Size(s, "offset");
                return Sys(s, "lseek", $"{A(s, "fd")}, {A(s, "offset")}, {(Has(s, "whence") ? A(s, "whence") : "SEEK_SET")}", _k.Lseek(Proc(s), Fd(s), off, wh));
            }
            case "read":
            case "pread":
            {
                var t = Proc(s); int fd = Fd(s);
                long pos = s.Op == "read" ? (t.Fds.TryGetValue(fd, out var of) ? of.Pos : 0) : (long)Size(s, "offset");
                var check = ExpectedCheck(s, pos);
                var r = s.Op == "read" ? _k.Read(t, fd, Size(s, "length"), check) : _k.Pread(t, fd, Size(s, "length"), Size(s, "offset"), check);
                _lastCheck = check;
                return Sys(s, s.Op, s.Op == "read" ? $"{A(s, "fd")}, buf, {A(s, "length")}" : $"{A(s, "fd")}, buf, {A(s, "length")}, {A(s, "offset")}", r);
            }
            case "mmap":
            {
                int prot = Has(s, "prot") ? Flags(s, "prot", v => v switch { "PROT_READ" => Mman.PROT_READ, "PROT_WRITE" => Mman.PROT_WRITE, _ => 0 }) : Mman.PROT_READ | Mman.PROT_WRITE;
                int fl = Flags(s, "flags", v => v switch
                {
                    "MAP_SHARED" => Mman.MAP_SHARED, "MAP_PRIVATE" => Mman.MAP_PRIVATE, "MAP_ANONYMOUS" => Mman.MAP_ANONYMOUS, "MAP_HUGETLB" => Mman.MAP_HUGETLB,
                    "MAP_HUGE_2MB" => Mman.MAP_HUGE_2MB, "MAP_HUGE_1GB" => Mman.MAP_HUGE_1GB, "MAP_NORESERVE" => Mman.MAP_NORESERVE, "MAP_POPULATE" => Mman.MAP_POPULATE, _ => 0,
                });
                int fd = Has(s, "fd") ? Fd(s) : -1;
                ulong len = Size(s, "length");
                var r = _k.Mmap(Proc(s), len, prot, fl, fd, Size(s, "offset"), A(s, "name"));
                if (!r.Failed) _maps[A(s, "name")] = ((ulong)r.Ret, Proc(s).Mm.FindVma((ulong)r.Ret)?.Length ?? len);
                return Sys(s, "mmap", $"NULL, {A(s, "length")}, {(Has(s, "prot") ? A(s, "prot") : "PROT_READ|PROT_WRITE")}, {(Has(s, "flags") ? A(s, "flags") : "0")}, {(Has(s, "fd") ? A(s, "fd") : "-1")}, {(Has(s, "offset") ? A(s, "offset") : "0")} -> {A(s, "name")}", r);
            }
            case "munmap":
            {
                var (va, len) = Map(s);
                ulong off = Size(s, "offset");
                ulong l = Has(s, "length") ? Size(s, "length") : len - off;
                return Sys(s, "munmap", $"{Addr(s)}, {Units.Size(l)}", _k.Munmap(Proc(s), va + off, l));
            }
            case "madvise":
            {
                var (va, _) = Map(s);
                int adv = A(s, "advice") switch
                {
                    "MADV_DONTNEED" => Mman.MADV_DONTNEED, "MADV_REMOVE" => Mman.MADV_REMOVE, "MADV_HWPOISON" => Mman.MADV_HWPOISON,
                    "MADV_SOFT_OFFLINE" => Mman.MADV_SOFT_OFFLINE, "MADV_SPLIT" => Mman.MADV_SPLIT, "MADV_COLLAPSE" => Mman.MADV_COLLAPSE, "MADV_REPAIR" => Policies.MadvRepair.MADV_REPAIR, _ => -1,
                };
                ulong len = Has(s, "length") ? Size(s, "length") : Units.PAGE_SIZE;
                return Sys(s, "madvise", $"{Addr(s)}, {Units.Size(len)}, {A(s, "advice")}", _k.Madvise(Proc(s), va + Size(s, "offset"), len, adv));
            }
            case "fork":
            {
                var child = _k.Fork(Proc(s), A(s, "child"));
                _procs[A(s, "child")] = child;
                foreach (var kv in _fds.Where(kv => kv.Key.Proc == s.As).ToList()) _fds[(A(s, "child"), kv.Key.Fd)] = kv.Value;
                return Sys(s, "fork", "", SysResult.Ok(child.Pid));
            }
            case "exit": _k.DoExit(Proc(s), "exit()"); return Sys(s, "exit", "0", SysResult.Ok());
            case "prctl":
            {
                var p = !Has(s, "arg2") || A(s, "arg2") == "PR_MCE_KILL_CLEAR" ? MceKillPolicy.Default :
                    (Has(s, "arg3") ? A(s, "arg3") : "") switch { "PR_MCE_KILL_EARLY" => MceKillPolicy.Early, "PR_MCE_KILL_LATE" => MceKillPolicy.Late, _ => MceKillPolicy.Default };
                return Sys(s, "prctl", $"PR_MCE_KILL, {(Has(s, "arg2") ? A(s, "arg2") : "")}, {(Has(s, "arg3") ? A(s, "arg3") : "")}", _k.PrctlMceKill(Proc(s), p));
            }
            case "sysctl":
            {
                long v = Value(s); // validated as a number or a size
                switch (A(s, "name"))
                {
                    case "vm.memory_failure_early_kill": _k.EarlyKill = v != 0; break;
                    case "vm.memory_failure_recovery": _k.Recovery = v != 0; break;
                    case "vm.nr_hugepages": _k.SetNrHugepages(_k.H2M, v); break;
                    case "vm.nr_overcommit_hugepages": _k.H2M.nr_overcommit_huge_pages = v; break;
                    case "vm.enable_soft_offline":
                        if (!_k.HasEnableSoftOfflineSysctl) return Sys(s, "open", "/proc/sys/vm/enable_soft_offline", SysResult.Err(Errno.ENOENT));
                        _k.EnableSoftOffline = v != 0; break;
                }
                return Sys(s, "write", $"/proc/sys/{A(s, "name").Replace('.', '/')}, {v}", SysResult.Ok());
            }
            case "nr_hugepages":
            {
                var h = A(s, "size") == "1G" ? _k.H1G : _k.H2M;
                long v = Value(s); // validated as a number or a size
                _k.SetNrHugepages(h, v);
                return Sys(s, "write", $"/sys/kernel/mm/hugepages/hugepages-{h.Size >> 10}kB/nr_hugepages, {v}", SysResult.Ok());
            }
            case "store":
            case "load":
            {
                var t = Proc(s);
                var (va, mlen) = Map(s);
                ulong off = Size(s, "offset");
                ulong len = Has(s, "length") ? Size(s, "length") : 1;
                bool write = s.Op == "store";
                Pattern pat = default;
                if (write) Pattern.TryParse(Has(s, "pattern") ? A(s, "pattern") : s.Step_DefaultPattern(), out pat);
                long po = pat.At ?? (long)off;
                ContentCheck? check = write ? null : ExpectedCheck(s, (long)off);
                var r = _k.Access(t, va + off, len, write, pat.Seed, po, check);
                _lastCheck = check; _lastAccess = r;
                if (r.Blocked) _blocked.Add((t, va + off + r.Done, len - r.Done, write, pat.Seed, po + (long)r.Done, r.Done));
                _k.Emit(new AccessEvent(_k.NowNs, t.Comm, s.Op, _k.Sym(t, va + off), len, r.Done, r.Outcome));
                return $"{s.Op} {Units.Size(len)} at {Addr(s)}: {r.Outcome}" + (r.Done != len ? $" after {r.Done} bytes" : "");
            }
            case "hw_error": return HwError(s);
            case "corrupt_pfn":
            {
                ulong pfn = PfnArg(s);
                _k.Log($"Injecting memory failure at pfn {Units.Hex(pfn)}");
                int r = _k.MemoryFailure(pfn, MfFlags.MF_SW_SIMULATED);
                return Sys(s, "write", $"/sys/kernel/debug/hwpoison/corrupt-pfn, {Units.Hex(pfn)}", r < 0 ? SysResult.Err(-r) : SysResult.Ok());
            }
            case "unpoison_pfn":
            {
                ulong pfn = PfnArg(s);
                int r = _k.UnpoisonMemory(pfn);
                return Sys(s, "write", $"/sys/kernel/debug/hwpoison/unpoison-pfn, {Units.Hex(pfn)}", r < 0 ? SysResult.Err(-r) : SysResult.Ok());
            }
            case "pfn_of":
            {
                var t = Proc(s);
                var (va, _) = Map(s);
                var r = _k.Walk(t.Mm, va + Size(s, "offset"));
                var e = r.Entry;
                ulong pfn = e.Present ? e.Pfn + ((va + Size(s, "offset") - r.Va) >> Units.PAGE_SHIFT) : 0;
                _vars[A(s, "save")] = pfn;
                return Sys(s, "pread", $"/proc/self/pagemap @ {Addr(s)} -> ${A(s, "save")} = {Units.Hex(pfn)}", e.Present ? SysResult.Ok((long)pfn) : SysResult.Err(Errno.ENOENT));
            }
            case "userfaultfd":
            {
                ulong feat = (ulong)Flags(s, "features", v => (int)Userfaultfd.FeatureBit(v));
                var r = _k.UserfaultfdCreate(Proc(s), feat);
                if (!r.Failed) SetFd(s, (int)r.Ret);
                return Sys(s, "userfaultfd", Has(s, "features") ? A(s, "features") : "0", r);
            }
            case "uffdio_register":
            {
                var (va, len) = Map(s);
                int mode = Has(s, "mode") ? Flags(s, "mode", v => v switch { "MISSING" => 1, "WP" => 2, _ => 4 }) : 1;
                ulong off = Size(s, "offset"); ulong l = Has(s, "length") ? Size(s, "length") : len - off;
                return Sys(s, "ioctl", $"{A(s, "uffd")}, UFFDIO_REGISTER, {Addr(s)}, {Units.Size(l)}", _k.UffdioRegister(Proc(s), Fd(s, "uffd"), va + off, l, mode));
            }
            case "uffdio_copy":
            case "uffdio_poison":
            {
                var (va, len) = Map(s);
                ulong off = Size(s, "offset"); ulong l = Has(s, "length") ? Size(s, "length") : len - off;
                SysResult r;
                if (s.Op == "uffdio_copy")
                {
                    Pattern.TryParse(Has(s, "pattern") ? A(s, "pattern") : "zero", out var pat);
                    r = _k.UffdioCopy(Proc(s), Fd(s, "uffd"), va + off, l, pat.Seed, pat.At ?? (long)off);
                }
                else r = _k.UffdioPoison(Proc(s), Fd(s, "uffd"), va + off, l);
                string sum = Sys(s, "ioctl", $"{A(s, "uffd")}, {s.Op.ToUpperInvariant()}, {Addr(s)}, {Units.Size(l)}", r);
                ResumeBlocked();
                return sum;
            }
            case "read_loop":
            {
                var t = Proc(s); int fd = Fd(s);
                long start = t.Fds.TryGetValue(fd, out var of0) ? of0.Pos : 0;
                var check = ExpectedCheck(s, start);
                long total = 0; SysResult r; int calls = 0;
                ulong chunk = Size(s, "chunk");
                do { r = _k.Read(t, fd, chunk, check is null ? null : new ContentCheck(check.Seed, check.PatternOffset + total)); calls++; if (!r.Failed) total += r.Ret; }
                while (!r.Failed && r.Ret > 0 && calls < 1_000_000);
                _lastCheck = check is null ? null : VerifyRange(t, fd, start, total, check);
                var fin = r.Failed ? new SysResult(total, r.Errno) : SysResult.Ok(total);
                return Sys(s, "read_loop", $"{A(s, "fd")}, chunk {A(s, "chunk")}: {calls} reads, last = {(r.Failed ? "-1 " + Errno.Name(r.Errno) : r.Ret.ToString())}", fin);
            }
            case "kvm_guest_access":
            {
                var t = Proc(s); var (va, _) = Map(s);
                ulong hva = va + Size(s, "offset");
                var r = _k.KvmGuestAccess(t, hva, Has(s, "length") ? Size(s, "length") : 1);
                _lastAccess = r;
                _k.Emit(new AccessEvent(_k.NowNs, t.Comm, "guest access", _k.Sym(t, hva), Has(s, "length") ? Size(s, "length") : 1, r.Done, r.Outcome));
                return $"guest access at {Addr(s)}: {r.Outcome}";
            }
            case "vm_create":
            {
                string name = A(s, "name");
                ulong ram = Has(s, "ram") ? Size(s, "ram") : 4 * Units.GiB;
                ulong ps = Has(s, "page_size") ? Size(s, "page_size") : Units.GiB;
                int vcpus = Has(s, "vcpus") ? int.Parse(A(s, "vcpus"), CultureInfo.InvariantCulture) : 1;
                var gc = new GuestConfig
                {
                    KernelFraction = Has(s, "kernel_fraction") ? double.Parse(A(s, "kernel_fraction"), CultureInfo.InvariantCulture) : 0.05,
                    MaxMces = Has(s, "max_mces") ? int.Parse(A(s, "max_mces"), CultureInfo.InvariantCulture) : null,
                    MceWindowNs = Has(s, "mce_window_s") ? (long)(double.Parse(A(s, "mce_window_s"), CultureInfo.InvariantCulture) * 1e9) : 60_000_000_000,
                    Amd = Has(s, "amd") && A(s, "amd") == "true",
                    Enlightened = Has(s, "enlightened") && A(s, "enlightened") == "true",
                };
                var qv = Has(s, "qemu") && Version.TryParse(A(s, "qemu"), out var q) ? q : new Version(10, 0);
                Vm vm;
                try { vm = new Vm(_k, name, ram, ps, vcpus, gc, qv); }
                catch (InvalidOperationException ex) { _lastErrno = Errno.ENOMEM; _lastRet = -1; return "vm_create failed: " + ex.Message; }
                _vms[name] = vm;
                _procs[name] = vm.Vmm;
                for (int i = 0; i < vcpus; i++) _procs[$"{name}/vcpu{i}"] = vm.Vcpus[i];
                _maps[name + ".ram"] = (vm.RamHva, ram);
                _fds[(name, name + ".ram")] = vm.RamFd;
                string pop = Has(s, "populate") ? A(s, "populate") : "guest";
                if (pop != "none" && Pattern.TryParse(pop, out var pp))
                    _k.Access(vm.Vmm, vm.RamHva, ram, write: true, pp.Seed, 0);
                _k.Act($"vm {name}: {Units.Size(ram)} guest RAM on {Units.Size(ps)} hugetlb pages, {vcpus} vCPU(s), QEMU {qv}");
                return $"vm_create {name}: {Units.Size(ram)} RAM at {Units.Hex(vm.RamHva)}";
            }
            case "guest_access":
            {
                var vm = _vms[A(s, "vm")];
                int vcpu = Has(s, "vcpu") ? int.Parse(A(s, "vcpu"), CultureInfo.InvariantCulture) : 0;
                bool write = Has(s, "write") && A(s, "write") == "true";
                ulong gpa = Size(s, "gpa"), len = Has(s, "length") ? Size(s, "length") : 8;
                Pattern.TryParse(Has(s, "pattern") ? A(s, "pattern") : "guest", out var pat);
                var check = write ? null : ExpectedCheck(s, (long)gpa);
                var r = vm.GuestAccess(vcpu, gpa, len, write, pat.Seed, pat.At ?? (long)gpa, check);
                _lastAccess = r; _lastCheck = check;
                _k.Emit(new AccessEvent(_k.NowNs, vm.Vcpus[vcpu].Comm, write ? "guest store" : "guest load", "gpa " + Units.Hex(gpa), len, r.Done, r.Outcome));
                return $"guest {(write ? "store" : "load")} {Units.Size(len)} at gpa {Units.Hex(gpa)}: {r.Outcome}";
            }
            case "guest_touch":
            {
                var vm = _vms[A(s, "vm")];
                int vcpu = Has(s, "vcpu") ? int.Parse(A(s, "vcpu"), CultureInfo.InvariantCulture) : 0;
                ulong gpa = Size(s, "gpa"), len = Size(s, "length");
                int pages = int.Parse(A(s, "pages"), CultureInfo.InvariantCulture);
                double rate = Has(s, "rate") ? double.Parse(A(s, "rate"), CultureInfo.InvariantCulture) : 1000;
                ulong stride = pages > 0 ? Math.Max(Units.PAGE_SIZE, Units.AlignDown(len / (ulong)pages, Units.PAGE_SIZE)) : len;
                int done = 0, sigbus = 0;
                for (int i = 0; i < pages && vm.Alive; i++)
                {
                    ulong a = gpa + (ulong)i * stride + 0x80;
                    if (a >= gpa + len) break;
                    int before = vm.Vcpus[vcpu].SignalsReceived;
                    vm.GuestAccess(vcpu, a, 8, write: false);
                    if (vm.Vcpus[vcpu].SignalsReceived != before) sigbus++;
                    done++;
                    _k.Advance((long)(1e9 / rate));
                }
                string end = vm.Alive ? "VM alive" : vm.PanicReason is { } pr ? "guest panicked: " + pr : "VMM exited";
                _lastAccess = new AccessResult((ulong)done, end);
                return $"guest touched {done} pages, {sigbus} SIGBUS, {vm.Mces} MCEs in all; {end}";
            }
            case "vm_reset":
            {
                var vm = _vms[A(s, "vm")];
                vm.SystemReset();
                return $"vm_reset {vm.Name}";
            }
            case "migrate":
            {
                var vm = _vms[A(s, "vm")];
                var cfg = new MigrationConfig
                {
                    Mode = Has(s, "mode") && A(s, "mode") == "postcopy" ? MigrationMode.Postcopy : MigrationMode.Precopy,
                    OnPoison = Has(s, "on_poison") && A(s, "on_poison") == "fake-poison" ? PoisonHandling.FakePoison : PoisonHandling.Refuse,
                    BandwidthGbps = Has(s, "bandwidth_gbps") ? double.Parse(A(s, "bandwidth_gbps"), CultureInfo.InvariantCulture) : 10,
                    RttUs = Has(s, "rtt_us") ? double.Parse(A(s, "rtt_us"), CultureInfo.InvariantCulture) : 100,
                    DirtyBytesPerSecond = Has(s, "dirty_mbps") ? double.Parse(A(s, "dirty_mbps"), CultureInfo.InvariantCulture) * 1e6 : 200e6,
                    PostcopyTouches = Has(s, "touches") ? int.Parse(A(s, "touches"), CultureInfo.InvariantCulture) : 2000,
                    MaxDowntimeMs = Has(s, "max_downtime_ms") ? double.Parse(A(s, "max_downtime_ms"), CultureInfo.InvariantCulture) : 300,
                    Preempt = !Has(s, "preempt") || A(s, "preempt") == "true",
                };
                var r = LiveMigration.Migrate(vm, cfg);
                _migrations.Add(r); _lastMigration = r;
                if (r.Refused) { _lastRet = -1; _lastErrno = Errno.EBUSY; return "migrate refused: " + r.Reason; }
                return $"migrate {cfg.Mode.ToString().ToLowerInvariant()}: {Units.Size((ulong)r.BytesMoved)} moved in {r.TotalNs / 1e9:0.###} s, downtime {r.DowntimeNs / 1e6:0.###} ms, "
                    + (cfg.Mode == MigrationMode.Postcopy ? $"{r.Faults} faults of {Units.Size(r.Granule)}, stall p50 {r.StallP50Ns / 1e3:0.#} us p99 {r.StallP99Ns / 1e3:0.#} us max {r.StallMaxNs / 1e3:0.#} us, " : "")
                    + $"fake-poisoned {Units.Size(r.FakePoisonedBytes)} ({r.FakePoisonBacking}); guest-visible poison {r.PoisonSetRelation}";
            }
            case "check": return "check";
        }
        return ExecMore(s) ?? "?";
    }

    /// <summary>Re-reads what a read loop returned, to compare it with the expected data in one pass.</summary>
    private ContentCheck VerifyRange(TaskStruct t, int fd, long start, long total, ContentCheck check)
    {
        var c = new ContentCheck(check.Seed, check.PatternOffset);
        if (total > 0) _k.PeekFile(t.Fds[fd].Inode, (ulong)start, (ulong)total, c);
        return c;
    }

    /// <summary>Accesses that waited in handle_userfault() retry after a resolving ioctl.</summary>
    private void ResumeBlocked()
    {
        var list = _blocked.ToList(); _blocked.Clear();
        foreach (var b in list)
        {
            var r = _k.Access(b.T, b.Va, b.Len, b.Write, b.Seed, b.Po);
            if (r.Blocked) _blocked.Add((b.T, b.Va + r.Done, b.Len - r.Done, b.Write, b.Seed, b.Po + (long)r.Done, b.Done + r.Done));
            _k.Emit(new AccessEvent(_k.NowNs, b.T.Comm, b.Write ? "store (resumed)" : "load (resumed)", _k.Sym(b.T, b.Va), b.Len, r.Done, r.Outcome));
        }
    }

    private ulong PfnArg(Step s)
    {
        if (Has(s, "pfn"))
        {
            var t = A(s, "pfn");
            if (t.StartsWith('$')) return _vars.GetValueOrDefault(t[1..]); // 0 when pfn_of could not read it, as pagemap gives
            return ScenarioParser.TryParseSize(t, out var v) ? v : 0;
        }
        var task = Proc(s);
        var (va, _) = Map(s);
        ulong a = va + Size(s, "offset");
        var r = _k.Walk(task.Mm, a);
        return r.Entry.Pfn + ((a - r.Va) >> Units.PAGE_SHIFT);
    }

    private string HwError(Step s)
    {
        ulong pa;
        var kind = Has(s, "kind") ? A(s, "kind") switch { "transient" => PoisonKind.Transient, "deposited" => PoisonKind.Deposited, _ => PoisonKind.Permanent } : PoisonKind.Permanent;
        string detect = Has(s, "detect") ? A(s, "detect") : (Has(s, "as") ? "consume" : "scrub");
        string where;
        if (Has(s, "phys")) { pa = Size(s, "phys"); where = Units.Hex(pa); }
        else if (Has(s, "pfn")) { pa = (PfnArg(s) << Units.PAGE_SHIFT) + Size(s, "offset"); where = Units.Hex(pa); }
        else if (Has(s, "map"))
        {
            var t = Proc(s); var (va, _) = Map(s);
            ulong a = va + Size(s, "offset");
            var r = _k.Walk(t.Mm, a);
            if (!r.Entry.Present && !r.Entry.IsHwpoison) return Sys(s, "hw_error", $"{Addr(s)}: not mapped (fault it in first)", SysResult.Err(Errno.EFAULT));
            pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (a - r.Va);
            where = $"{Addr(s)} (pa {Units.Hex(pa)})";
        }
        else
        {
            var t = Proc(s); int fd = Fd(s);
            if (!t.Fds.TryGetValue(fd, out var of)) return Sys(s, "hw_error", $"{A(s, "fd")}: not an open file", SysResult.Err(Errno.EBADF));
            var inode = of.Inode;
            ulong off = Size(s, "offset");
            if (!inode.PageCache.TryGetValue(off / inode.FolioSize, out var f)) return Sys(s, "hw_error", "file offset has no page", SysResult.Err(Errno.ENOENT));
            pa = f.PhysAddr + off % inode.FolioSize;
            where = $"{A(s, "fd")}@{Units.Hex(off)} (pa {Units.Hex(pa)})";
        }
        pa = Units.AlignDown(pa, Units.CACHELINE);
        _k.Phys.PoisonLine(pa, kind);
        _k.KAct($"hardware error: {kind.ToString().ToLowerInvariant()} poison in cacheline {Units.Hex(pa)}, {detect}");
        if (detect == "scrub")
        {
            // patrol scrub finds it: GHES/CMCI -> memory_failure_queue() without MF_ACTION_REQUIRED
            _k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
        }
        else if (detect == "consume" && Has(s, "map"))
        {
            var t = Proc(s); var (va, _) = Map(s);
            ulong a = Units.AlignDown(va + Size(s, "offset"), Units.CACHELINE);
            var r = _k.Access(t, a, Units.CACHELINE, write: false);
            _lastAccess = r;
            _k.Emit(new AccessEvent(_k.NowNs, t.Comm, "load", _k.Sym(t, a), Units.CACHELINE, r.Done, r.Outcome));
        }
        return $"hw_error {kind.ToString().ToLowerInvariant()} at {where}, {detect}";
    }

    private string Addr(Step s) => Has(s, "offset") && Size(s, "offset") != 0 ? $"{A(s, "map")}+{Units.Hex(Size(s, "offset"))}" : A(s, "map");

    private ContentCheck? ExpectedCheck(Step s, long offsetOfFirstByte)
    {
        if (s.Expect?.Data is not { } d || !Pattern.TryParse(d, out var p)) return null;
        return new ContentCheck(p.Seed, p.At ?? offsetOfFirstByte);
    }

    // ---- expectations ----

}

internal static class StepExtensions
{
    public static string Step_DefaultPattern(this Step s) => "p1";
}

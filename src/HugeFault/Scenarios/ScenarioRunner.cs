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
        if (s.As is { } p && !_procs[p].Alive && s.Call is not ExitOp) return $"process '{p}' is dead ({_procs[p].ExitReason})";
        if (s.Call.VmRef is { } vm && !_vms.ContainsKey(vm)) return $"vm '{vm}' was not created";
        if (s.Call.FdRef is { } f && !_fds.ContainsKey((s.As ?? "", f))) return $"fd '{f}' was not created (its open failed)";
        if (s.Call.UffdRef is { } u && !_fds.ContainsKey((s.As ?? "", u))) return $"userfaultfd '{u}' was not created";
        return null;
    }

    private TaskStruct Proc(Step s) => _procs[s.As!];
    private int Fd(Step s, string name) => _fds.TryGetValue((s.As ?? "", name), out var fd) ? fd : -1;

    private string Sys(Step s, string call, string args, SysResult r)
    {
        _lastRet = r.Ret; _lastErrno = r.Errno;
        _k.Emit(new SyscallEvent(_k.NowNs, s.As ?? "-", call, args, r.Ret, r.Errno));
        return r.Failed ? $"{call} = -1 {Errno.Name(r.Errno)}" : $"{call} = {(r.Ret > 4096 ? Units.Hex((ulong)r.Ret) : r.Ret.ToString())}";
    }

    /// <summary>The start and length of a named mapping (its mmap succeeded: checked before the op runs).</summary>
    private (ulong Va, ulong Len) Map(string name) => _maps[name];

    /// <summary>The range's length, or the rest of the mapping from its offset (0 when the offset is past the end).</summary>
    private ulong LengthOr(MapRange r, ulong mapLen) => r.Length?.Value ?? (r.Offset.Value < mapLen ? mapLen - r.Offset.Value : 0);

    private static string Addr(MapRange r) => Addr(r.Map, r.Offset);
    private static string Addr(string map, SizeArg off) => off.Value != 0 ? $"{map}+{Units.Hex(off.Value)}" : map;

    private string Exec(Step s)
    {
        // a mapping can be declared by an mmap step that failed at run time: report it, do not crash
        if (s.Call.MapRef is { } mapRef && !_maps.ContainsKey(mapRef))
            return Sys(s, s.Op, $"{mapRef}: no such mapping (its mmap failed)", SysResult.Err(Errno.EFAULT));
        return s.Call switch
        {
            MemfdCreateOp o => MemfdCreate(s, o),
            OpenOp o => Open(s, o),
            CloseOp o => Sys(s, "close", o.Fd, _k.Close(Proc(s), Fd(s, o.Fd))),
            UnlinkOp o => Sys(s, "unlink", o.Path, _k.Unlink(o.Path)),
            FtruncateOp o => Sys(s, "ftruncate", $"{o.Fd}, {o.Length.Text}", _k.Ftruncate(Proc(s), Fd(s, o.Fd), (long)o.Length.Value)),
            FallocateOp o => Sys(s, "fallocate", $"{o.Fd}, {o.Mode.Text}, {o.Offset.Text}, {o.Length.Text}",
                _k.Fallocate(Proc(s), Fd(s, o.Fd), (int)o.Mode.Bits, o.Offset.Value, o.Length.Value)),
            LseekOp o => Sys(s, "lseek", $"{o.Fd}, {o.OffsetText}, {o.WhenceText}", _k.Lseek(Proc(s), Fd(s, o.Fd), o.Offset, o.Whence)),
            ReadOp o => Read(s, o.Fd, o.Length, null),
            PreadOp o => Read(s, o.Fd, o.Length, o.Offset),
            ReadLoopOp o => ReadLoop(s, o),
            MmapOp o => Mmap(s, o),
            MunmapOp o => Munmap(s, o),
            MadviseOp o => Madvise(s, o),
            ForkOp o => Fork(s, o),
            ExitOp => Exit(s),
            PrctlOp o => Sys(s, "prctl", $"PR_MCE_KILL, {o.Arg2 ?? ""}, {o.Arg3 ?? ""}", _k.PrctlMceKill(Proc(s), o.Policy)),
            SysctlOp o => Sysctl(s, o),
            NrHugepagesOp o => NrHugepages(s, o),
            StoreOp o => Access(s, o.At, write: true, o.Pattern),
            LoadOp o => Access(s, o.At, write: false, default),
            HwErrorOp o => HwError(s, o),
            CorruptPfnOp o => CorruptPfn(s, PfnOf(s, o.Pfn, o.At)),
            UnpoisonPfnOp o => UnpoisonPfn(s, PfnOf(s, o.Pfn, o.At)),
            PfnOfOp o => PfnOfStep(s, o),
            UserfaultfdOp o => Userfaultfd(s, o),
            UffdioRegisterOp o => UffdioRegister(s, o),
            UffdioCopyOp o => UffdIoctl(s, o.Uffd, o.At, "uffdio_copy", (va, l) => _k.UffdioCopy(Proc(s), Fd(s, o.Uffd), va, l, o.Pattern.Seed, o.Pattern.At ?? (long)o.At.Offset.Value)),
            UffdioPoisonOp o => UffdIoctl(s, o.Uffd, o.At, "uffdio_poison", (va, l) => _k.UffdioPoison(Proc(s), Fd(s, o.Uffd), va, l)),
            UffdioContinueOp o => UffdIoctl(s, o.Uffd, o.At, "uffdio_continue", (va, l) => _k.UffdioContinue(Proc(s), Fd(s, o.Uffd), va, l)),
            UffdioWriteprotectOp o => UffdIoctl(s, o.Uffd, o.At, "uffdio_writeprotect", (va, l) => _k.UffdioWriteprotect(Proc(s), Fd(s, o.Uffd), va, l, o.Protect)),
            KvmGuestAccessOp o => KvmGuestAccess(s, o),
            VmCreateOp o => VmCreate(s, o),
            GuestAccessOp o => GuestAccess(s, o),
            GuestTouchOp o => GuestTouch(o),
            VmResetOp o => VmReset(o),
            MigrateOp o => Migrate(o),
            ThreadOp o => Thread(s, o),
            ShmgetOp o => Shmget(s, o),
            ShmatOp o => Shmat(s, o),
            ShmdtOp o => Sys(s, "shmdt", o.Map, _k.Shmdt(Proc(s), Map(o.Map).Va)),
            ShmRmidOp o => Sys(s, "shmctl", $"{o.Shm}, IPC_RMID", _k.ShmctlRmid(_shm.GetValueOrDefault(o.Shm, -1))),
            _ => "check",
        };
    }

    private ContentCheck? ExpectedCheck(Step s, long offsetOfFirstByte)
    {
        if (s.Expect?.Data is not { } d || !Pattern.TryParse(d, out var p)) return null;
        return new ContentCheck(p.Seed, p.At ?? offsetOfFirstByte);
    }
}

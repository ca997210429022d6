using System.Runtime.CompilerServices;
using HugeFault.Fs;
using HugeFault.Mm;
using HugeFault.Policies;

namespace HugeFault;

/// <summary>A syscall's return value and errno (0 when it succeeded).</summary>
public readonly record struct SysResult(long Ret, int Errno)
{
    public static SysResult Ok(long v = 0) => new(v, 0);
    public static SysResult Err(int errno) => new(-1, errno);
    public bool Failed => Errno != 0;
}

/// <summary>Kernel work and memory counters used to compare policies.</summary>
public sealed class KernelStats
{
    public long EntriesWritten;
    public long PagesCopied;
    public long BytesCopied;
    public long MapcountUpdates;
    public long TablePagesAllocated;
    public long TablePagesFreed;
    public long TablePagesNow;
    public long TablePagesPeak;
    public long ExtraBytesNow;
    public long ExtraBytesPeak;
    public long Signals;
    public long TasksKilled;
    public long EptZaps;
    public long InaccessibleNs;
    public long PoisonedHugePagesDissolved;
    public long HugePagesConverted;
    public long GoodDataDroppedBytes;
    public long BytesZeroed;
    public long Repairs;
    public void AddExtra(long bytes) { ExtraBytesNow += bytes; if (ExtraBytesNow > ExtraBytesPeak) ExtraBytesPeak = ExtraBytesNow; }
}

/// <summary>
/// The modelled Linux host: physical memory, hugetlb pools, files, tasks and their address spaces, and the
/// memory-failure machinery. Methods are named after the syscalls and kernel functions they model; they
/// never throw for bad user input: they return errno as the kernel does.
/// </summary>
public sealed partial class Kernel
{
    private readonly List<TraceEvent> _trace = new();
    private readonly Dictionary<int, TaskStruct> _tasks = new();
    private readonly List<Inode> _inodes = new();
    private int _nextPid = 100, _nextIno = 1, _nextMm = 1, _nextUffd = 1;
    private Dictionary<string, long> _lastCounters = new();

    public Kernel(KernelConfig config)
    {
        Config = config;
        RecordTrace = config.RecordTrace;
        Phys = new PhysicalMemory(config.MemoryBytes);
        H1G = new Hstate(Units.PUD_SHIFT - Units.PAGE_SHIFT) { nr_overcommit_huge_pages = config.Overcommit1G };
        H2M = new Hstate(Units.PMD_SHIFT - Units.PAGE_SHIFT) { nr_overcommit_huge_pages = config.Overcommit2M };
        EarlyKill = config.MemoryFailureEarlyKill;
        Recovery = config.MemoryFailureRecovery;
        Policy = RecoveryPolicies.Create(config.Policy, config.PolicyParams);
        // boot-time pools: gigantic pages first, as memblock reserves them early
        SetNrHugepages(H1G, config.HugePages1G);
        SetNrHugepages(H2M, config.HugePages2M);
        _lastCounters = Counters();
    }

    public KernelConfig Config { get; }
    public PhysicalMemory Phys { get; }
    public Hstate H1G { get; }
    public Hstate H2M { get; }
    public IEnumerable<Hstate> Hstates { get { yield return H2M; yield return H1G; } }
    public IRecoveryPolicy Policy { get; }
    public KernelStats Stats { get; } = new();
    public bool EarlyKill { get; set; }
    public bool Recovery { get; set; }
    /// <summary>vm.enable_soft_offline (6.11+; 1 by default).</summary>
    public bool EnableSoftOffline { get; set; } = true;
    internal bool SoftOfflineDisabledLogged { get; set; }
    /// <summary>num_poisoned_pages: /proc/meminfo HardwareCorrupted = this × 4 kB.</summary>
    public long NumPoisonedPages { get; set; }
    /// <summary>A real (not MF_SW_SIMULATED) memory failure happened: unpoison is disabled (hw_memory_failure).</summary>
    public bool HwMemoryFailure { get; set; }
    public bool Panicked { get; private set; }
    /// <summary>While a policy reports at cacheline granularity: the bad line's offset in its 4 KiB page.</summary>
    internal ulong? LineReport { get; set; }
    public long NowNs { get; private set; }
    public IReadOnlyList<TraceEvent> Trace => _trace;
    public IEnumerable<TaskStruct> Tasks => _tasks.Values;
    public IReadOnlyList<Inode> Inodes => _inodes;
    /// <summary>The task whose context a kernel path runs in ("current"), or null for an interrupt/scrubber context.</summary>
    public TaskStruct? Current { get; internal set; }

    public Hstate? HstateForSize(ulong size) => size == H1G.Size ? H1G : size == H2M.Size ? H2M : null;

    // ---- trace ----

    /// <summary>Trace events are kept (<see cref="KernelConfig.RecordTrace"/>); when false, none is built.</summary>
    public bool RecordTrace { get; }
    internal void Emit(TraceEvent e) { if (RecordTrace) _trace.Add(e); }
    internal void Tick() => NowNs += Config.StepNs;
    /// <summary>Advances simulated time (guest workloads, transfers).</summary>
    public void Advance(long ns) => NowNs += Math.Max(0, ns);
    internal void Log(string text) => Emit(new LogEvent(NowNs, text));
    internal void Act(string text) => Emit(new ActionEvent(NowNs, Policy.Name, text));
    internal void KAct(string text) => Emit(new ActionEvent(NowNs, "kernel", text));
    // the same, for interpolated text: formatted only when the trace is recorded (TraceText)
    internal void Log([InterpolatedStringHandlerArgument("")] ref TraceText text) { if (text.Enabled) Log(text.ToStringAndClear()); }
    internal void Act([InterpolatedStringHandlerArgument("")] ref TraceText text) { if (text.Enabled) Act(text.ToStringAndClear()); }
    internal void KAct([InterpolatedStringHandlerArgument("")] ref TraceText text) { if (text.Enabled) KAct(text.ToStringAndClear()); }

    /// <summary>Emits counter-change events since the last call (called at the end of every operation).</summary>
    public void FlushCounters()
    {
        if (!RecordTrace) return;
        var now = Counters();
        foreach (var kv in now)
            if (!_lastCounters.TryGetValue(kv.Key, out var old) || old != kv.Value)
                Emit(new CounterEvent(NowNs, kv.Key, _lastCounters.GetValueOrDefault(kv.Key), kv.Value));
        _lastCounters = now;
    }

    /// <summary>The /proc/meminfo hugetlb lines per hstate plus HardwareCorrupted (kB) and page tables (kB).</summary>
    public Dictionary<string, long> Counters()
    {
        var d = new Dictionary<string, long>();
        foreach (var h in Hstates)
        {
            string s = h.Name;
            d[$"HugePages_Total[{s}]"] = h.nr_huge_pages;
            d[$"HugePages_Free[{s}]"] = h.free_huge_pages;
            d[$"HugePages_Rsvd[{s}]"] = h.resv_huge_pages;
            d[$"HugePages_Surp[{s}]"] = h.surplus_huge_pages;
        }
        d["HardwareCorrupted"] = NumPoisonedPages * 4;
        d["PageTables"] = Stats.TablePagesNow * 4;
        return d;
    }

    /// <summary>A /proc/meminfo snapshot (the default hstate's lines are the 2 MiB ones as on x86 with default_hugepagesz=2M).</summary>
    public MemInfo MemInfo() => new(
        (long)(Phys.Bytes >> 10), (long)(Phys.FreePages * 4), NumPoisonedPages * 4, Stats.TablePagesNow * 4,
        H2M.nr_huge_pages, H2M.free_huge_pages, H2M.resv_huge_pages, H2M.surplus_huge_pages,
        H1G.nr_huge_pages, H1G.free_huge_pages, H1G.resv_huge_pages, H1G.surplus_huge_pages);

    // ---- tasks ----

    public TaskStruct Spawn(string comm)
    {
        var mm = NewMm();
        int pid = _nextPid++;
        var t = new TaskStruct(pid, comm, mm) { Tgid = pid };
        mm.Users++;
        _tasks.Add(pid, t);
        return t;
    }

    public TaskStruct? FindTask(int pid) => _tasks.GetValueOrDefault(pid);

    /// <summary>clone(CLONE_VM|CLONE_THREAD): a new thread in t's thread group, sharing its mm and files.</summary>
    public TaskStruct CloneThread(TaskStruct t, string comm)
    {
        int pid = _nextPid++;
        var th = new TaskStruct(pid, comm, t.Mm) { Tgid = t.Tgid, Fds = t.Fds };
        th.Sigbus = t.Sigbus; th.MceKill = t.MceKill;
        t.Mm.Users++;
        _tasks.Add(pid, th);
        return th;
    }

    /// <summary>Called for every signal delivered (after it is traced): the VMM model's SIGBUS handler hooks here.</summary>
    public Action<TaskStruct, int, int, ulong, int>? SignalDelivered { get; set; }

    private MmStruct NewMm()
    {
        var pgd = AllocTable(null, PtLevel.Pgd) ?? throw new InvalidOperationException("out of memory for a PGD at task creation");
        return new MmStruct(_nextMm++, pgd);
    }

    internal int NewIno() => _nextIno++;
    internal void AddInode(Inode i) => _inodes.Add(i);
    internal int NewUffdId() => _nextUffd++;

    /// <summary>panic(): the model stops executing anything after this.</summary>
    internal void Panic(string text)
    {
        Panicked = true;
        Emit(new PanicEvent(NowNs, text));
    }

    /// <summary>Symbolic form of a user address: "name+0xoff" within the mapping holding it.</summary>
    public string Sym(TaskStruct t, ulong va)
    {
        var v = t.Mm.FindVma(va);
        if (v is null || v.Name.Length == 0) return Units.Hex(va);
        ulong off = va - v.NameBase;
        return off == 0 ? v.Name : $"{v.Name}+{Units.Hex(off)}";
    }
}

/// <summary>A /proc/meminfo snapshot (kB where the kernel prints kB).</summary>
public sealed record MemInfo(long MemTotal, long MemFree, long HardwareCorrupted, long PageTables,
    long HugePages_Total, long HugePages_Free, long HugePages_Rsvd, long HugePages_Surp,
    long HugePages1G_Total, long HugePages1G_Free, long HugePages1G_Rsvd, long HugePages1G_Surp);

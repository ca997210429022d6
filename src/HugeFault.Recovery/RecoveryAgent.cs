using System.Runtime.InteropServices;
using System.Text;
using HugeFault.Recovery.Kernel;
using HugeFault.Recovery.Native;

namespace HugeFault.Recovery;

/// <summary>
/// Turns a poisoned huge page of a MAP_SHARED hugetlbfs/memfd mapping into one lost 4 KiB page, on the
/// kernels of today (Linux 6.6+). Adopt it with one call, <see cref="Protect"/>; when a memory error hits a
/// protected huge page, the agent copies the good data into a tmpfs replacement, maps it over exactly that
/// huge page, marks each lost 4 KiB with UFFDIO_POISON (a later touch gets SIGBUS BUS_MCEERR_AR with
/// si_addr_lsb 12), and raises <see cref="PageRecovered"/> with the lost offsets. Threads that touch the
/// page meanwhile are held in the SIGBUS handler and retry afterwards instead of dying.
/// </summary>
/// <remarks>
/// The handler and the agent thread are machine code (Native/*.c): neither runs managed code, so a garbage
/// collection started while threads are held cannot deadlock with the agent. One agent per process owns
/// SIGBUS (<see cref="Shared"/>); other instances exist for tests with a fake <see cref="IKernel"/>.
/// </remarks>
public sealed unsafe class RecoveryAgent : IDisposable
{
    private static readonly object s_sharedLock = new();
    private static RecoveryAgent? s_shared;

    private readonly IKernel _k;
    private readonly RecoveryOptions _opt;
    private readonly NativeBlob _blob = new();
    private readonly HfCtl* _ctl;
    private readonly object _gate = new();
    private readonly List<ProtectedRegion> _regions = [];
    private readonly List<PageRecovery> _recoveries = [];
    private readonly byte* _oldAction = (byte*)NativeMemory.AllocZeroed(152);
    private Thread? _agent, _reporter;
    private volatile bool _stopping;
    private bool _disposed;

    /// <summary>The process's agent (real kernel).</summary>
    public static RecoveryAgent Shared
    {
        get { lock (s_sharedLock) return s_shared ??= new RecoveryAgent(LinuxKernel.Instance); }
    }

    /// <summary>Protects [address, address+length) of a MAP_SHARED mapping of <paramref name="fd"/> with the process's agent.</summary>
    public static ProtectResult Protect(int fd, nint address, long length) => Shared.ProtectRange(fd, address, length);

    /// <summary>An agent over the given kernel. Nothing in the process changes until the first successful <see cref="ProtectRange"/>.</summary>
    public RecoveryAgent(IKernel kernel, RecoveryOptions? options = null)
    {
        _k = kernel;
        _opt = options ?? new RecoveryOptions();
        _ctl = (HfCtl*)NativeMemory.AlignedAlloc((nuint)HfCtl.Size, 4096);
        new Span<byte>(_ctl, HfCtl.Size).Clear();
    }

    /// <summary>Raised on the agent's reporter thread once per poisoned huge page, after its threads were released.</summary>
    public event Action<PageRecovery>? PageRecovered;

    /// <summary>The protected ranges.</summary>
    public IReadOnlyList<ProtectedRegion> Regions { get { lock (_gate) return _regions.ToList(); } }

    /// <summary>Every page handled so far, in order.</summary>
    public IReadOnlyList<PageRecovery> Recoveries { get { lock (_gate) return _recoveries.ToList(); } }

    /// <summary>Protects a range; on any error nothing is changed and every reason is returned.</summary>
    public ProtectResult ProtectRange(int fd, nint address, long length)
    {
        lock (_gate)
        {
            if (_disposed) return Refuse(ProtectErrorKind.AgentFailed, "the agent was disposed");
            var ranges = _regions.Select(r => ((ulong)r.Address, (ulong)r.Address + (ulong)r.Length)).ToList();
            var (range, errors) = ProtectChecks.Check(_k, fd, address, length, ranges, HfCtl.MaxRegions, _opt);
            if (range is null) return new ProtectResult(null, errors);
            long dup = _k.Syscall(Uapi.__NR_fcntl, fd, Uapi.F_DUPFD_CLOEXEC, 0);
            if (dup < 0) return Refuse(ProtectErrorKind.BadFile, $"fd {fd}: F_DUPFD_CLOEXEC failed with {Uapi.ErrnoName(dup)}");
            ulong hp = 1UL << range.Shift;
            long res = _k.Syscall(Uapi.__NR_mmap, 0, (long)(hp + (2UL << 20)), Uapi.PROT_NONE,
                Uapi.MAP_PRIVATE | Uapi.MAP_ANONYMOUS | Uapi.MAP_NORESERVE, -1, 0);
            if (res < 0 && res > -4096) { _k.Syscall(Uapi.__NR_close, dup); return Refuse(ProtectErrorKind.AgentFailed, $"reserving {hp >> 20} MiB of address space failed with {Uapi.ErrnoName(res)}"); }
            if (_ctl->MagicWord == 0 && Activate() is { } why)
            {
                _k.Syscall(Uapi.__NR_munmap, res, (long)(hp + (2UL << 20)));
                _k.Syscall(Uapi.__NR_close, dup);
                return Refuse(ProtectErrorKind.AgentFailed, why);
            }
            if (_opt.DontFork) _k.Syscall(Uapi.__NR_madvise, (long)range.Start, (long)range.Length, Uapi.MADV_DONTFORK);
            int idx = (int)_ctl->NRegions;
            Fill(HfCtl.Region(_ctl, idx), range, (int)dup, ((ulong)res + (2UL << 20) - 1) & ~((2UL << 20) - 1));
            Volatile.Write(ref _ctl->NRegions, (uint)idx + 1);
            var region = new ProtectedRegion((nint)range.Start, (long)range.Length, (long)hp, (long)range.FileOffset, range.Release, range.Thp, range.Notes);
            _regions.Add(region);
            return new ProtectResult(region, []);
        }
    }

    private static ProtectResult Refuse(ProtectErrorKind kind, string msg) => new(null, [new ProtectError(kind, msg + "; nothing was changed")]);

    private static void Fill(HfRegion* r, CheckedRange c, int fd, ulong reserve)
    {
        ulong pages = c.Length >> c.Shift;
        r->Start = c.Start; r->End = c.Start + c.Length; r->FileOff = c.FileOffset; r->Shift = (uint)c.Shift; r->Fd = fd;
        r->States = (uint*)NativeMemory.AllocZeroed((nuint)(pages * 4));
        r->Pages = (HfPage*)NativeMemory.AllocZeroed((nuint)(pages * (ulong)sizeof(HfPage)));
        r->Lost = (ulong*)NativeMemory.AllocZeroed((nuint)Math.Max(8UL, ((c.Length >> 12) + 63) / 64 * 8));
        r->Dev = c.Dev; r->Ino = c.Ino; r->Prot = c.Prot; r->Reserve = reserve;
        var pat = Encoding.ASCII.GetBytes(MapsLine.Pattern(c.Dev, c.Ino));
        pat.AsSpan(0, Math.Min(pat.Length, 39)).CopyTo(new Span<byte>(r->Pattern, 40));
        r->PatLen = (uint)Math.Min(pat.Length, 39);
    }

    /// <summary>First Protect: control block, userfaultfd, SIGBUS handler, agent and reporter threads. Null on success.</summary>
    private string? Activate()
    {
        var (uffd, features, apiErr) = KernelCalls.OpenUserfaultfd(_k, Uapi.UFFD_FEATURE_POISON);
        if (uffd < 0 || apiErr < 0 || (features & Uapi.UFFD_FEATURE_POISON) == 0)
        {
            if (uffd >= 0) _k.Syscall(Uapi.__NR_close, uffd);
            return $"userfaultfd with UFFD_FEATURE_POISON failed ({Uapi.ErrnoName(uffd < 0 ? uffd : apiErr)})";
        }
        _ctl->Pid = (int)_blob.Raw(Uapi.__NR_getpid);
        _ctl->Sys = _k.NativeSyscall;
        _ctl->Uffd = (int)uffd;
        _ctl->ScanBufAddr = (ulong)NativeMemory.AllocZeroed(HfCtl.ScanBuf);
        _ctl->Nice = _opt.AgentNice;
        _ctl->Flags = (uint)((_opt.StrictProcessScan ? CtlFlags.StrictScan : 0) | (_opt.DontFork ? CtlFlags.DontFork : 0)
            | (_opt.UseShmemThp && ProtectChecks.ShmemThp(_k) ? CtlFlags.Thp : 0));
        *_blob.CtlSlot = _ctl;
        // glibc struct sigaction (x86-64): handler +0, sa_mask +8 (128 B), sa_flags +136, restorer +144.
        byte* act = stackalloc byte[152];
        new Span<byte>(act, 152).Clear();
        *(nint*)act = _blob.Handler;
        *(int*)(act + 136) = Uapi.SA_SIGINFO | Uapi.SA_ONSTACK | Uapi.SA_RESTART;
        if (NativeBlob.sigaction(Uapi.SIGBUS, act, _oldAction) != 0)
        {
            _k.Syscall(Uapi.__NR_close, uffd);
            return "sigaction(SIGBUS) failed";
        }
        _ctl->PrevHandler = *(ulong*)_oldAction;
        _ctl->PrevFlags = (ulong)*(int*)(_oldAction + 136);
        Volatile.Write(ref _ctl->MagicWord, HfCtl.Magic);
        _agent = new Thread(RunAgent) { IsBackground = true, Name = "hugefault-recovery" };
        _agent.Start();
        while (Volatile.Read(ref _ctl->Started) == 0) _blob.Raw(Uapi.__NR_futex, (long)&_ctl->Started, Uapi.FUTEX_WAIT_PRIVATE, 0);
        _reporter = new Thread(RunReporter) { IsBackground = true, Name = "hugefault-recovery-events" };
        _reporter.Start();
        return null;
    }

    private void RunAgent() => ((delegate* unmanaged<HfCtl*, long>)_blob.AgentRun)(_ctl);

    /// <summary>Waits on hf_ctl.done; reports each page that reached ST_RECOVERED or ST_FAILED once.</summary>
    private void RunReporter()
    {
        long* ts = stackalloc long[2];
        uint seen = 0;
        while (true)
        {
            uint d = Volatile.Read(ref _ctl->Done);
            if (d == seen)
            {
                if (_stopping) return;
                ts[0] = 0; ts[1] = 200_000_000;
                _blob.Raw(Uapi.__NR_futex, (long)&_ctl->Done, Uapi.FUTEX_WAIT_PRIVATE, seen, (long)ts);
                continue;
            }
            seen = d;
            foreach (var ev in Reporting.Collect(_ctl, _k))
            {
                lock (_gate) { _recoveries.Add(ev); Monitor.PulseAll(_gate); }
                PageRecovered?.Invoke(ev);
            }
        }
    }

    /// <summary>Waits until <paramref name="count"/> pages have been handled (recovered, refused or failed).</summary>
    public bool WaitForRecoveries(int count, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (_recoveries.Count < count)
            {
                var left = until - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_gate, left)) return _recoveries.Count >= count;
            }
            return true;
        }
    }

    /// <summary>
    /// Copies <paramref name="n"/> bytes like memcpy and returns the bytes NOT copied: a SIGBUS on a lost 4 KiB
    /// page (or on a page the agent could not recover) ends the copy there instead of killing the thread. A
    /// copy that meets a page under recovery waits and continues. The thread is in native code meanwhile, so a
    /// garbage collection does not wait for it.
    /// </summary>
    public nuint CopyChecked(void* dst, void* src, nuint n) => ((delegate* unmanaged<void*, void*, nuint, nuint>)_blob.CopyMc)(dst, src, n);

    /// <summary>Whether the 4 KiB page holding <paramref name="address"/> was lost in a recovery.</summary>
    public bool IsLost(nint address)
    {
        uint n = Volatile.Read(ref _ctl->NRegions);
        for (int i = 0; i < n; i++)
        {
            var r = HfCtl.Region(_ctl, i);
            ulong a = (ulong)address;
            if (a < r->Start || a >= r->End) continue;
            ulong b = (a - r->Start) >> 12;
            return Volatile.Read(ref r->States[(a - r->Start) >> (int)r->Shift]) == PageState.Recovered && (r->Lost[b / 64] & (1UL << (int)(b % 64))) != 0;
        }
        return false;
    }

    /// <summary>Signals the handler recorded so far (at most 1024), oldest first.</summary>
    public IReadOnlyList<SignalRecord> Signals() => Reporting.Signals(_ctl);

    /// <summary>prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY) on the agent thread: 0, or −errno.</summary>
    public long EarlyKillStatus => _ctl->PrctlRet;

    /// <summary>setpriority() of the agent thread to <see cref="RecoveryOptions.AgentNice"/>: 0, or −errno (EACCES without CAP_SYS_NICE).</summary>
    public long AgentNiceStatus => _ctl->NiceRet;

    /// <summary>Stops the agent (a page still waiting is refused: its threads get the default action), restores the previous SIGBUS handler.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        if (_agent is null) return;
        Volatile.Write(ref _ctl->Stop, 1);
        Interlocked.Increment(ref _ctl->Events);
        _blob.Raw(Uapi.__NR_futex, (long)&_ctl->Events, Uapi.FUTEX_WAKE_PRIVATE, int.MaxValue);
        _agent.Join();
        _stopping = true;
        _blob.Raw(Uapi.__NR_futex, (long)&_ctl->Done, Uapi.FUTEX_WAKE_PRIVATE, int.MaxValue);
        _reporter?.Join();
        NativeBlob.sigaction(Uapi.SIGBUS, _oldAction, null);
        for (int i = 0; i < _ctl->NRegions; i++) _k.Syscall(Uapi.__NR_close, HfCtl.Region(_ctl, i)->Fd);
        _k.Syscall(Uapi.__NR_close, _ctl->Uffd);
    }
}

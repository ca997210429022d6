using HugeFault.Recovery.Kernel;

namespace HugeFault.Recovery;

/// <summary>Why <c>Protect</c> refused a range. Nothing is changed when any error is returned.</summary>
public enum ProtectErrorKind
{
    /// <summary>Linux older than 6.6: no read() of a poisoned hugetlb page's good subpages, no UFFDIO_POISON.</summary>
    KernelTooOld,
    /// <summary>CONFIG_MEMORY_FAILURE is off: a memory error is never turned into a SIGBUS the agent could act on.</summary>
    NoMemoryFailure,
    /// <summary>userfaultfd(2) is not available to this process.</summary>
    UserfaultfdUnavailable,
    /// <summary>userfaultfd does not offer UFFD_FEATURE_POISON.</summary>
    NoUffdPoison,
    /// <summary>The fd is not open, not readable, or not on hugetlbfs (a hugetlbfs file or a MFD_HUGETLB memfd).</summary>
    BadFile,
    /// <summary>Address or length is zero or not a multiple of the huge page size.</summary>
    Unaligned,
    /// <summary>The range is not (entirely) a MAP_SHARED mapping of that file with contiguous offsets.</summary>
    NotMapped,
    /// <summary>The range overlaps one already protected, or too many ranges are protected.</summary>
    Conflict,
    /// <summary>The agent could not start (handler, thread, reservations).</summary>
    AgentFailed,
}

/// <summary>One reason <c>Protect</c> refused.</summary>
public sealed record ProtectError(ProtectErrorKind Kind, string Message);

/// <summary>A protected range.</summary>
/// <param name="Address">Start (huge-page aligned).</param>
/// <param name="Length">Bytes.</param>
/// <param name="HugePageSize">2 MiB or 1 GiB (f_bsize of the hugetlbfs file).</param>
/// <param name="FileOffset">File offset of <paramref name="Address"/>.</param>
/// <param name="KernelRelease">uname -r.</param>
/// <param name="ShmemThp">Replacements are madvise(MADV_HUGEPAGE)d tmpfs (shmem THP enabled).</param>
/// <param name="Notes">Conditions worth knowing (e.g. vm.memory_failure_recovery = 0).</param>
public sealed record ProtectedRegion(nint Address, long Length, long HugePageSize, long FileOffset, string KernelRelease, bool ShmemThp, IReadOnlyList<string> Notes);

/// <summary>The outcome of <c>Protect</c>: a region, or every reason it was refused.</summary>
public sealed record ProtectResult(ProtectedRegion? Region, IReadOnlyList<ProtectError> Errors)
{
    /// <summary>The range is protected.</summary>
    public bool Ok => Region is not null;

    /// <summary>The errors, one per line, each saying what to change.</summary>
    public string Message => string.Join(Environment.NewLine, Errors.Select(e => e.Message));
}

/// <summary>What the agent did with one huge page.</summary>
public enum RecoveryOutcome
{
    /// <summary>The replacement is mapped; only <see cref="PageRecovery.LostOffsets"/> fault.</summary>
    Recovered,
    /// <summary>The agent did not act (another process uses the file, or the agent was stopped): the page stays as mainline leaves it.</summary>
    Refused,
    /// <summary>A step failed; the page stays as mainline leaves it.</summary>
    Failed,
}

/// <summary>One signal the agent's handler saw.</summary>
/// <param name="Signo">Signal number (SIGBUS).</param>
/// <param name="Code">si_code.</param>
/// <param name="Addr">si_addr.</param>
/// <param name="AddrLsb">si_addr_lsb.</param>
/// <param name="Tid">Thread that got it.</param>
/// <param name="FaultNs">CLOCK_MONOTONIC when the handler started.</param>
/// <param name="ResumeNs">CLOCK_MONOTONIC when a held thread was released (0 if not held).</param>
/// <param name="Action">retried (blocked, then retried against the replacement), fixup (a checked copy returned early),
/// ao-noted (early-kill notice that started a recovery), chained (not the agent's: previous handler or the default action), ao-ignored.</param>
public readonly record struct SignalRecord(int Signo, int Code, ulong Addr, int AddrLsb, int Tid, long FaultNs, long ResumeNs, string Action)
{
    /// <summary>BUS_MCEERR_AR, BUS_MCEERR_AO, ….</summary>
    public string CodeName => Uapi.BusCodeName(Code);

    /// <summary>How long the thread was held in the handler (0 if it was not).</summary>
    public TimeSpan Blocked => ResumeNs > FaultNs ? TimeSpan.FromTicks((ResumeNs - FaultNs) / 100) : TimeSpan.Zero;
}

/// <summary>What happened to one poisoned huge page: raised once per page on the agent's reporter thread.</summary>
/// <param name="Outcome">Recovered, refused or failed.</param>
/// <param name="Address">Start of the huge page.</param>
/// <param name="Size">Huge page size.</param>
/// <param name="FileOffset">Offset of the huge page in the hugetlbfs file.</param>
/// <param name="LostOffsets">Offsets (within the huge page) of the 4 KiB pages that read EIO and now carry poison markers.</param>
/// <param name="Reason">Empty when recovered; otherwise the step and errno, or the process that shares the file.</param>
/// <param name="FirstCode">si_code of the first report (BUS_MCEERR_AO from early kill, or BUS_MCEERR_AR).</param>
/// <param name="FirstAddr">si_addr of the first report.</param>
/// <param name="FirstLsb">si_addr_lsb of the first report (21 or 30).</param>
/// <param name="Detected">Time from the first report to the agent starting.</param>
/// <param name="Scanned">Time to check /proc for other users of the file.</param>
/// <param name="Filled">Time to create the replacement and read the good data into it.</param>
/// <param name="Swapped">Time to mark the lost pages and mremap the replacement in.</param>
/// <param name="Total">First report to threads released.</param>
/// <param name="BytesCopied">Bytes pread() into the replacement.</param>
/// <param name="ReplacementFd">The replacement memfd (kept open by the agent; -1 if none).</param>
/// <param name="PoisonCalls">UFFDIO_POISON ioctls (one per run of lost pages).</param>
/// <param name="OtherPid">With Refused: a process that maps or holds the file.</param>
/// <param name="Uninspected">Processes whose /proc entries could not be read during the check.</param>
/// <param name="ShmemThp">The replacement was madvise(MADV_HUGEPAGE)d.</param>
public sealed record PageRecovery(
    RecoveryOutcome Outcome, nint Address, long Size, long FileOffset, IReadOnlyList<long> LostOffsets, string Reason,
    int FirstCode, ulong FirstAddr, int FirstLsb, TimeSpan Detected, TimeSpan Scanned, TimeSpan Filled, TimeSpan Swapped, TimeSpan Total,
    long BytesCopied, int ReplacementFd, int PoisonCalls, int OtherPid, int Uninspected, bool ShmemThp);

/// <summary>Options of an agent.</summary>
public sealed record RecoveryOptions
{
    /// <summary>madvise(MADV_DONTFORK) protected ranges (as QEMU does for guest RAM), so a fork child cannot
    /// become an unseen second mapper. Default true.</summary>
    public bool DontFork { get; init; } = true;

    /// <summary>Refuse to recover when some process's /proc entries cannot be read (another user's
    /// process might share the file). Default false: such processes are counted in
    /// <see cref="PageRecovery.Uninspected"/>.</summary>
    public bool StrictProcessScan { get; init; }

    /// <summary>Use 2 MiB shmem THP for replacements when /sys/kernel/mm/transparent_hugepage allows it. Default true.</summary>
    public bool UseShmemThp { get; init; } = true;

    /// <summary>Nice value of the agent thread (threads wait for it; raising its priority needs CAP_SYS_NICE and is
    /// skipped without). Default −10; 0 leaves it alone.</summary>
    public int AgentNice { get; init; } = -10;
}

using HugeFault.Mm;

namespace HugeFault;

/// <summary>The modelled host at boot: memory, huge page pools, sysctls and the hugetlb recovery policy.</summary>
public sealed record KernelConfig
{
    public ulong MemoryBytes { get; init; } = 8 * Units.GiB;
    /// <summary>Persistent pool size per hstate at boot (hugepagesz=1G hugepages=N …).</summary>
    public long HugePages1G { get; init; }
    public long HugePages2M { get; init; }
    public long Overcommit1G { get; init; }
    public long Overcommit2M { get; init; }
    /// <summary>vm.memory_failure_early_kill.</summary>
    public bool MemoryFailureEarlyKill { get; init; }
    /// <summary>vm.memory_failure_recovery (0 = panic on any memory failure).</summary>
    public bool MemoryFailureRecovery { get; init; } = true;
    /// <summary>Recovery policy name (see Policies); "mainline" is Linux today.</summary>
    public string Policy { get; init; } = "mainline";
    /// <summary>Policy parameters (e.g. report granularity, fallback policy).</summary>
    public IReadOnlyDictionary<string, string> PolicyParams { get; init; } = new Dictionary<string, string>();
    /// <summary>Kernel version whose behaviour to follow where mainline changed (e.g. 6.8 precise si_addr).</summary>
    public Version KernelVersion { get; init; } = new(6, 12);
    /// <summary>Simulated time per syscall or access (for deterministic timestamps).</summary>
    public long StepNs { get; init; } = 1000;
    /// <summary>Keep the trace (syscalls, signals, log lines, actions, counters). False for runs that only want the
    /// end state and statistics (benchmarks, sweeps): no trace event or text is then built at all.</summary>
    public bool RecordTrace { get; init; } = true;
}

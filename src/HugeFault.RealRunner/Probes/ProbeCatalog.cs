namespace HugeFault.RealRunner.Probes;

/// <summary>One named experiment: what it answers, the boot it needs, and the code.</summary>
/// <param name="Hugepages2M">persistent 2 MiB pool on the kernel command line</param>
/// <param name="Hugepages1G">persistent 1 GiB pool on the kernel command line</param>
internal sealed record ProbeSpec(string Name, string Cases, string Question, int Hugepages2M, int Hugepages1G,
    Action<Probing.Probe> Run)
{
    /// <summary>The huge page part of the kernel command line for this probe's boot.</summary>
    public string BootArgs => $"default_hugepagesz=2M hugepagesz=1G hugepages={Hugepages1G} hugepagesz=2M hugepages={Hugepages2M}";
}

internal static class ProbeCatalog
{
    public static readonly IReadOnlyList<ProbeSpec> All =
    [
        new("a-late", "5,6,8", "shared memfd, A injects, B (late kill) reads later; new mapper C", 4, 0,
            p => SharedPoisonProbes.TwoProcesses(p, SharedPoisonProbes.KillMode.Late)),
        new("a-early", "7", "as a-late, B has PR_MCE_KILL_EARLY", 4, 0,
            p => SharedPoisonProbes.TwoProcesses(p, SharedPoisonProbes.KillMode.EarlyPrctl)),
        new("a-early-sysctl", "7", "as a-late, vm.memory_failure_early_kill=1, B has no per-thread policy", 4, 0,
            p => SharedPoisonProbes.TwoProcesses(p, SharedPoisonProbes.KillMode.EarlySysctl)),
        new("a-early-untouched", "7", "as a-early, but B mapped the file and never touched it before the injection", 4, 0,
            p => SharedPoisonProbes.TwoProcesses(p, SharedPoisonProbes.KillMode.EarlyPrctlUntouched)),
        new("b-repoison", "14,15,16", "second raw page / same raw page again (madvise and corrupt-pfn); range madvise", 4, 0,
            SharedPoisonProbes.Repoison),
        new("c-anon-private", "18,19", "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB poison; fork inherits", 4, 0,
            AnonProbes.AnonPrivate),
        new("d-pread", "9,10,11,13", "pread/read of a poisoned memfd folio; hole read", 4, 0,
            ReadProbes.PreadPoisoned),
        new("e-free-pool", "3", "corrupt-pfn of a free pool page with free > resv", 3, 0,
            PoolProbes.FreePage),
        new("e-free-reserved", "4", "corrupt-pfn of a free pool page with free - resv = 0", 2, 0,
            PoolProbes.FreeReservedPage),
        new("f-truncate", "17", "munmap + ftruncate / punch hole of a poisoned shared folio; reuse; shrink pool", 3, 0,
            PoolProbes.TruncatePoisoned),
        new("g-uffd-poison", "21", "UFFDIO_POISON on hugetlb (private anon and shared memfd)", 8, 0,
            UffdProbes.Poison),
        new("h-recovery-off", "22", "vm.memory_failure_recovery=0 then MADV_HWPOISON", 2, 0,
            PoolProbes.RecoveryOff),
        new("i-pool-empty", "2", "2 MiB pool of 0: mmap ENOMEM, MAP_NORESERVE touch SIGBUS", 0, 0,
            PoolProbes.EmptyPool),
        new("j-1g-shared", "5,6,11,16", "as a-late and d-pread on one 1 GiB folio (si_addr_lsb 30)", 0, 1,
            GigaProbes.SharedOneGiB),
        new("k-unpoison", "20", "debugfs unpoison-pfn of a dissolved free page and of an in-use / unmapped / truncated folio", 3, 0,
            OfflineProbes.Unpoison),
        new("l-soft-offline", "23", "MADV_SOFT_OFFLINE of a populated shared hugetlb page with and without a spare page", 3, 0,
            OfflineProbes.SoftOffline),
        new("selftest", "-", "exception table on any kernel: SIGBUS beyond EOF of a memfd", 0, 0,
            SelfTest.Run),
    ];

    public static ProbeSpec? Find(string name) => All.FirstOrDefault(p => p.Name == name);
}

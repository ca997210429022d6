using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Probes;

/// <summary>Pool-level behaviour: free/reserved page poison, truncate, recovery off, empty pool.</summary>
internal static class PoolProbes
{
    private const long X = SharedPoisonProbes.X;
    private const string NrHugepages2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";

    /// <summary>Fault a page in to learn a pool page's pfn, free it back to the pool, return pfn(+X).</summary>
    private static ulong PfnOfFreedPoolPage(Probe p, string label)
    {
        long fd = p.MemfdCreate($"memfd-{label}", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate($"ftruncate-{label}", fd, HPAGE_2M);
        p.Mmap($"mmap-{label}", label, HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Store($"touch-{label}", label, 0, 1);
        ulong pfn = p.Pfn($"pfn-{label}-X", label, X);
        p.Munmap($"munmap-{label}", label);
        p.Close($"close-{label}", fd);   // last reference: folio back on the free list
        return pfn;
    }

    /// <summary>Case 3: corrupt-pfn on a free pool page while free &gt; resv.</summary>
    public static void FreePage(Probe p)
    {
        p.Meminfo("start");
        ulong pfn = PfnOfFreedPoolPage(p, "T");
        p.Meminfo("after-free");
        p.KpageFlags("kpageflags-X-free", pfn);
        p.KpageFlags("kpageflags-head-free", pfn - (ulong)(X / PAGE_SIZE));
        p.CorruptPfn("corrupt-pfn-free", pfn);
        p.Meminfo("after-corrupt");
        p.KpageFlags("kpageflags-X-after", pfn);
        p.KpageFlags("kpageflags-head-after", pfn - (ulong)(X / PAGE_SIZE));
        p.KpageFlags("kpageflags-X+1-after", pfn + 1);
        // The remaining pool is usable: map and touch all of it.
        long fd = p.MemfdCreate("memfd-rest", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate-rest", fd, 2 * HPAGE_2M);
        p.Mmap("mmap-rest", "R", 2 * HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Touch("touch-rest", "R");
        p.Meminfo("after-touch-rest");
        long fd2 = p.MemfdCreate("memfd-more", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate-more", fd2, HPAGE_2M);
        p.Mmap("mmap-more", "S", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
    }

    /// <summary>Case 4: corrupt-pfn on a free pool page that backs a reservation (free − resv = 0).</summary>
    public static void FreeReservedPage(Probe p)
    {
        p.Meminfo("start");
        ulong pfn = PfnOfFreedPoolPage(p, "T");
        p.Meminfo("after-free");
        long fd = p.MemfdCreate("memfd-resv", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate-resv", fd, 2 * HPAGE_2M);
        p.Mmap("mmap-resv", "R", 2 * HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Meminfo("after-reserve");
        p.CorruptPfn("corrupt-pfn-reserved", pfn);
        p.Meminfo("after-corrupt");
        p.KpageFlags("kpageflags-X-after", pfn);
        p.KpageFlags("kpageflags-head-after", pfn - (ulong)(X / PAGE_SIZE));
        p.Store("touch-resv-page0", "R", 0, 1);
        p.Pfn("pfn-resv-page0", "R", 0);
        p.Meminfo("after-touch-page0");
        p.Store("touch-resv-page1", "R", HPAGE_2M, 1);
        p.Pfn("pfn-resv-page1", "R", HPAGE_2M);
        p.Meminfo("after-touch-page1");
        p.Munmap("munmap-resv", "R");
        p.Close("close-resv", fd);
        p.Meminfo("after-release");
        p.WriteText("shrink-pool", NrHugepages2M, "0\n");
        p.Meminfo("after-shrink");
        p.KpageFlags("kpageflags-X-after-shrink", pfn);
    }

    /// <summary>Case 17: a poisoned in-use shared folio, then munmap + ftruncate (and punch hole).</summary>
    public static void TruncatePoisoned(Probe p)
    {
        p.Meminfo("start");
        long fd = p.MemfdCreate("memfd-T", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate-T", fd, HPAGE_2M);
        p.Mmap("mmap-T", "T", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Store("touch-T", "T", 0, 1);
        ulong pfnT = p.Pfn("pfn-T-X", "T", X);
        p.Madvise("inject-T", "T", X, PAGE_SIZE, MADV_HWPOISON);
        p.Meminfo("after-inject-T");
        p.Munmap("munmap-T", "T");
        p.Meminfo("after-munmap-T");
        p.Ftruncate("truncate-T-0", fd, 0);
        p.Meminfo("after-truncate-T");
        p.KpageFlags("kpageflags-T-X-after-truncate", pfnT);
        p.KpageFlags("kpageflags-T-head-after-truncate", pfnT - (ulong)(X / PAGE_SIZE));
        p.Close("close-T", fd);
        p.Meminfo("after-close-T");

        // Punch-hole variant on a second folio.
        long fd2 = p.MemfdCreate("memfd-H", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate-H", fd2, HPAGE_2M);
        p.Mmap("mmap-H", "H", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
        p.Store("touch-H", "H", 0, 1);
        ulong pfnH = p.Pfn("pfn-H-X", "H", X);
        p.Madvise("inject-H", "H", X, PAGE_SIZE, MADV_HWPOISON);
        p.Munmap("munmap-H", "H");
        p.Meminfo("after-munmap-H");
        p.Sys("punch-H", "fallocate", __NR_fallocate, fd2, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, HPAGE_2M);
        p.Meminfo("after-punch-H");
        p.KpageFlags("kpageflags-H-head-after-punch", pfnH - (ulong)(X / PAGE_SIZE));
        SharedPoisonProbes.Pread(p, fd2, "pread-H-after-punch", X, PAGE_SIZE);
        p.Close("close-H", fd2);
        p.Meminfo("after-close-H");

        // Can new mappings get pages? Ask for as many as the pool claims to have free.
        var m = p.Meminfo("before-reuse");
        long n = Math.Max(m.Free, 1);
        long fd3 = p.MemfdCreate("memfd-N", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate-N", fd3, n * HPAGE_2M);
        long r = p.Mmap("mmap-N", "N", n * HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd3, 0);
        p.Meminfo("after-mmap-N");
        if (r >= 0)
            for (long i = 0; i < n; i++)
            {
                p.Store($"touch-N-page{i}", "N", i * HPAGE_2M, 1);
                p.Pfn($"pfn-N-page{i}", "N", i * HPAGE_2M);
            }
        p.Meminfo("after-touch-N");
        if (r >= 0) p.Munmap("munmap-N", "N");
        p.Close("close-N", fd3);
        p.Meminfo("after-close-N");
        p.WriteText("shrink-pool", NrHugepages2M, "0\n");
        p.Meminfo("after-shrink");
        p.KpageFlags("kpageflags-T-X-after-shrink", pfnT);
        p.KpageFlags("kpageflags-H-X-after-shrink", pfnH);
    }

    /// <summary>Case 22: vm.memory_failure_recovery = 0. The panic text is read from the console.</summary>
    public static void RecoveryOff(Probe p)
    {
        p.WriteText("sysctl-recovery-off", "/proc/sys/vm/memory_failure_recovery", "0\n");
        p.Note("sysctl-value", (p.ReadText("/proc/sys/vm/memory_failure_recovery") ?? "?").Trim());
        long fd = p.MemfdCreate("memfd", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate", fd, HPAGE_2M);
        p.Mmap("mmap", "M", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Store("touch", "M", 0, 1);
        p.Pfn("pfn-X", "M", X);
        p.Note("about-to-inject", "the kernel is expected to panic inside this madvise");
        p.Madvise("inject", "M", X, PAGE_SIZE, MADV_HWPOISON);
        p.Note("survived", "no panic");
    }

    /// <summary>Case 2: empty 2 MiB pool.</summary>
    public static void EmptyPool(Probe p)
    {
        p.Meminfo("start");
        long fd = p.MemfdCreate("memfd", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate", fd, HPAGE_2M);
        p.Mmap("mmap-shared", "S", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Mmap("mmap-shared-noreserve", "N", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
        p.Load("read-noreserve", "N", X);
        p.Store("write-noreserve", "N", X, 1);
        p.Mmap("mmap-anon", "A", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
        p.Mmap("mmap-anon-noreserve", "B", HPAGE_2M, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE);
        p.Store("write-anon-noreserve", "B", X, 1);
        p.Sys("fallocate", "fallocate", __NR_fallocate, fd, 0, 0, HPAGE_2M);
        p.Meminfo("end");
    }
}

using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Probes;

/// <summary>Unpoison (case 20) and soft offline (case 23) of hugetlb pages.</summary>
internal static class OfflineProbes
{
    private const long X = SharedPoisonProbes.X;

    private static long UnpoisonPfn(Probe p, string step, ulong pfn)
        => p.WriteText(step, "/sys/kernel/debug/hwpoison/unpoison-pfn", "0x" + pfn.ToString("x") + "\n");

    /// <summary>
    /// Only simulated errors happen in this boot. (1) a free pool page poisoned by corrupt-pfn
    /// (dissolved) is unpoisoned; (2) an in-use shared folio poisoned by madvise is unpoisoned while
    /// mapped, after munmap, and after truncate.
    /// </summary>
    public static void Unpoison(Probe p)
    {
        p.Meminfo("start");
        long fd = p.MemfdCreate("memfd-F", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate-F", fd, HPAGE_2M);
        p.Mmap("mmap-F", "F", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Store("touch-F", "F", 0, 1);
        ulong pfnF = p.Pfn("pfn-F-X", "F", X);
        p.Munmap("munmap-F", "F");
        p.Close("close-F", fd);
        p.CorruptPfn("corrupt-pfn-free", pfnF);
        p.Meminfo("after-corrupt-free");
        UnpoisonPfn(p, "unpoison-free-raw", pfnF);
        p.Meminfo("after-unpoison-free-raw");
        p.KpageFlags("kpageflags-free-raw-after-unpoison", pfnF);

        long fd2 = p.MemfdCreate("memfd-U", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate-U", fd2, HPAGE_2M);
        p.Mmap("mmap-U", "U", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
        p.Store("touch-U", "U", 0, 1);
        ulong pfnU = p.Pfn("pfn-U-X", "U", X);
        ulong headU = pfnU - (ulong)(X / PAGE_SIZE);
        p.Madvise("inject-U", "U", X, PAGE_SIZE, MADV_HWPOISON);
        p.Meminfo("after-inject-U");
        UnpoisonPfn(p, "unpoison-in-use-raw", pfnU);
        UnpoisonPfn(p, "unpoison-in-use-head", headU);
        p.Meminfo("after-unpoison-in-use");
        p.Munmap("munmap-U", "U");
        UnpoisonPfn(p, "unpoison-unmapped-head", headU);
        p.Meminfo("after-unpoison-unmapped");
        p.Ftruncate("truncate-U", fd2, 0);
        UnpoisonPfn(p, "unpoison-truncated-head", headU);
        p.Meminfo("after-unpoison-truncated");
        p.Close("close-U", fd2);
        UnpoisonPfn(p, "unpoison-closed-head", headU);
        p.Meminfo("after-unpoison-closed");
        p.KpageFlags("kpageflags-U-head-end", headU);
    }

    /// <summary>MADV_SOFT_OFFLINE of a populated shared hugetlb page, with and without a spare page.</summary>
    public static void SoftOffline(Probe p)
    {
        p.Meminfo("start");
        long fd = p.MemfdCreate("memfd", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate", fd, HPAGE_2M);
        p.Mmap("mmap", "S", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Store("write-marker", "S", X + 17, 0xA5);
        ulong before = p.Pfn("pfn-before", "S", X);
        p.Madvise("soft-offline-with-spare", "S", X, PAGE_SIZE, MADV_SOFT_OFFLINE);
        p.Meminfo("after-soft-offline");
        p.Load("read-marker", "S", X + 17);
        ulong after = p.Pfn("pfn-after", "S", X);
        p.Note("pfn-changed", (before != after).ToString());
        p.KpageFlags("kpageflags-old-raw", before);
        p.KpageFlags("kpageflags-old-head", before - (ulong)(X / PAGE_SIZE));

        // Use up every remaining free page, then soft-offline again: no spare page.
        var m = p.Meminfo("before-fill");
        long n = m.Free;
        long fd2 = p.MemfdCreate("memfd-fill", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate-fill", fd2, Math.Max(n, 1) * HPAGE_2M);
        if (n > 0)
        {
            p.Mmap("mmap-fill", "F", n * HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
            p.Touch("touch-fill", "F");
        }
        p.Meminfo("after-fill");
        p.Madvise("soft-offline-no-spare", "S", X, PAGE_SIZE, MADV_SOFT_OFFLINE);
        p.Meminfo("after-soft-offline-no-spare");
        p.Load("read-marker-again", "S", X + 17);
        p.Pfn("pfn-end", "S", X);
    }
}

using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Probes;

/// <summary>
/// The one 1 GiB probe: cases 5/6/11/16 on a 1 GiB memfd folio, to confirm si_addr_lsb = 30 and
/// the 4 KiB accounting at that size. Only one byte is touched (faulting zeroes the whole GiB,
/// which takes seconds under TCG); pread costs milliseconds per call.
/// </summary>
internal static class GigaProbes
{
    private const long X = 0x12345000, X2 = 0x2345000, Y = 0x3FFFF000, P = PAGE_SIZE;

    public static void SharedOneGiB(Probe p)
    {
        p.PoolSysfs("pool-start", 1048576);
        long fd = p.MemfdCreate("memfd", MFD_HUGETLB | MFD_HUGE_1GB);
        p.Ftruncate("ftruncate", fd, HPAGE_1G);
        p.Mmap("mmap", "G", HPAGE_1G, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.PoolSysfs("pool-after-mmap", 1048576);
        p.Store("touch", "G", 0, 1);
        p.Store("touch-X-1", "G", X - P, 2);
        p.PoolSysfs("pool-after-touch", 1048576);
        ulong pfn = p.Pfn("pfn-X", "G", X);
        p.Madvise("inject-X", "G", X, P, MADV_HWPOISON);
        p.PoolSysfs("pool-after-inject", 1048576);
        p.KpageFlags("kpageflags-X", pfn);
        p.Load("read-Y", "G", Y);
        p.Load("read-X", "G", X);
        SharedPoisonProbes.Pread(p, fd, "pread-3P-at-X-P", X - P, 3 * P);
        SharedPoisonProbes.Pread(p, fd, "pread-P-at-X", X, P);
        SharedPoisonProbes.Pread(p, fd, "pread-P-at-X+P", X + P, P);
        p.CorruptPfn("corrupt-pfn-X2", pfn - (ulong)((X - X2) / P));
        p.PoolSysfs("pool-after-corrupt-X2", 1048576);
        SharedPoisonProbes.Pread(p, fd, "pread-P-at-X2", X2, P);
        p.Munmap("munmap", "G");
        p.Ftruncate("truncate-0", fd, 0);
        p.Close("close", fd);
        p.PoolSysfs("pool-after-close", 1048576);
    }
}

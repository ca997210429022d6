using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Probes;

/// <summary>Anonymous private hugetlb (kernel-behaviour.md cases 18, 19).</summary>
internal static class AnonProbes
{
    private const long X = SharedPoisonProbes.X, Y = SharedPoisonProbes.Y;

    public static void AnonPrivate(Probe p)
    {
        p.Meminfo("start");
        p.Mmap("mmap", "P", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB);
        p.Meminfo("after-mmap");
        p.Touch("touch", "P", PAGE_SIZE);
        p.Meminfo("after-touch");
        ulong pfn = p.Pfn("pfn-X", "P", X);
        p.KpageFlags("kpageflags-head-before", pfn - (ulong)(X / PAGE_SIZE));
        p.Madvise("inject-X", "P", X, PAGE_SIZE, MADV_HWPOISON);
        p.Meminfo("after-inject");
        p.KpageFlags("kpageflags-X-after", pfn);
        p.KpageFlags("kpageflags-head-after", pfn - (ulong)(X / PAGE_SIZE));
        p.KpageFlags("kpageflags-X+1-after", pfn + 1);
        p.Pfn("pagemap-X-after", "P", X);
        int pid = p.Fork("fork-child", "child", () =>
        {
            p.Load("child-read-Y", "P", Y);
            p.Store("child-write-0", "P", 0, 1);
        });
        p.Wait("wait-child", pid);
        p.Load("read-Y", "P", Y);
        p.Load("read-X", "P", X);
        p.Store("write-0", "P", 0, 1);
        p.CopyFrom("copy-all", "P", 0, HPAGE_2M);
        p.Munmap("munmap", "P");
        p.Meminfo("after-munmap");
        p.Mmap("mmap-again", "Q", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB);
        p.Touch("touch-again", "Q", PAGE_SIZE);
        p.Pfn("pfn-again", "Q", X);
        p.Meminfo("after-remap");
    }
}

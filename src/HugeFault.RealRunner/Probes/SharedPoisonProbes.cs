using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Probes;

/// <summary>Poison of an in-use MAP_SHARED hugetlb memfd folio (kernel-behaviour.md cases 5-8, 14-16).</summary>
internal static class SharedPoisonProbes
{
    public const long X = 0x5000;      // raw page poisoned first
    public const long X2 = 0x9000;     // a second raw page of the same folio
    public const long Y = 0x1F3000;    // far from X, same folio
    public const long Z = 0x100000;    // another offset, for the late mapper

    public enum KillMode { Late, EarlyPrctl, EarlySysctl, EarlyPrctlUntouched }

    /// <summary>
    /// A and B map one 2 MiB memfd at different addresses and both touch it; A injects at +X.
    /// B blocks in read(2) on a pipe during the injection (an AO signal, if any, is recorded there),
    /// then reads +Y and +X. Afterwards A reads its own mapping and maps the file again (C, case 8).
    /// </summary>
    public static void TwoProcesses(Probe p, KillMode mode)
    {
        long fd = p.MemfdCreate("memfd", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate", fd, HPAGE_2M);
        var (readyR, readyW) = p.Pipe();
        var (goR, goW) = p.Pipe();
        if (mode == KillMode.EarlySysctl)
            p.WriteText("sysctl-early-kill", "/proc/sys/vm/memory_failure_early_kill", "1\n");

        int pid = p.Fork("fork-B", "B", () =>
        {
            if (mode is KillMode.EarlyPrctl or KillMode.EarlyPrctlUntouched)
                p.Sys("prctl-early", "prctl", __NR_prctl, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0);
            p.Sys("prctl-get", "prctl", __NR_prctl, PR_MCE_KILL_GET, 0, 0, 0, 0);
            // A PROT_NONE gap first, so B's mapping of the file gets a different address from A's.
            p.Mmap("gap", "gapB", 6 * HPAGE_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
            p.Mmap("mmap-B", "B", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (mode != KillMode.EarlyPrctlUntouched) p.Store("touch-B", "B", Y, 0xB);
            else p.Note("B-untouched", "B mapped the file but never faulted it before the injection");
            Probe.Send(readyW);
            Probe.Receive(goR);   // injection happens while B sits here
            p.Note("B-after-injection", "signals recorded while blocked in read(2) during A's injection");
            p.Load("B-read-Y", "B", Y);
            p.Load("B-read-X", "B", X);
            p.Load("B-read-Y-again", "B", Y);
            p.CopyFrom("B-copy-all", "B", 0, HPAGE_2M);
            Probe.Send(readyW);
        });
        Probe.Receive(readyR);
        p.Mmap("mmap-A", "A", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Store("touch-A", "A", 0, 0xA);
        p.Load("A-read-X-before", "A", X);
        ulong pfn = p.Pfn("pfn-A-X", "A", X);
        p.KpageFlags("kpageflags-X-before", pfn);
        p.Meminfo("before-inject");
        p.Madvise("inject-A-X", "A", X, PAGE_SIZE, MADV_HWPOISON);
        p.Meminfo("after-inject");
        p.KpageFlags("kpageflags-X-after", pfn);
        p.KpageFlags("kpageflags-head-after", pfn - (ulong)(X / PAGE_SIZE));
        Probe.SleepMs(100);
        Probe.Send(goW);
        Probe.Receive(readyR);
        p.Wait("wait-B", pid);
        p.Load("A-read-Y", "A", Y);
        p.Load("A-read-X", "A", X);
        p.Store("A-write-0", "A", 0, 1);
        p.Mmap("mmap-C", "C", HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Load("C-read-Z", "C", Z);
        p.Meminfo("after-accesses");
        p.Munmap("munmap-A", "A");
        p.Munmap("munmap-C", "C");
        p.Meminfo("after-munmap");
    }

    /// <summary>
    /// Re-poisoning an already poisoned folio: madvise on a second raw page and on the same raw page
    /// (GUP on the hwpoison entry), then debugfs corrupt-pfn on those pfns (reaches memory_failure
    /// directly); pread shows which raw pages are recorded. Second folio: madvise over 3 raw pages.
    /// </summary>
    public static void Repoison(Probe p)
    {
        long fd = p.MemfdCreate("memfd", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate", fd, 2 * HPAGE_2M);
        p.Mmap("mmap", "M", 2 * HPAGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p.Touch("touch", "M", PAGE_SIZE);
        ulong head0 = p.Pfn("pfn-folio0", "M", 0);
        ulong head1 = p.Pfn("pfn-folio1", "M", HPAGE_2M);
        p.Meminfo("before");
        p.Madvise("inject-X", "M", X, PAGE_SIZE, MADV_HWPOISON);
        p.Meminfo("after-inject-X");
        p.Madvise("madvise-X2-second-raw-page", "M", X2, PAGE_SIZE, MADV_HWPOISON);
        p.Meminfo("after-madvise-X2");
        p.Madvise("madvise-X-same-raw-page", "M", X, PAGE_SIZE, MADV_HWPOISON);
        p.Meminfo("after-madvise-X-again");
        Preads(p, fd, "pread-after-madvise");
        p.CorruptPfn("corrupt-pfn-X2", head0 + (ulong)(X2 / PAGE_SIZE));
        p.Meminfo("after-corrupt-X2");
        p.CorruptPfn("corrupt-pfn-X-again", head0 + (ulong)(X / PAGE_SIZE));
        p.Meminfo("after-corrupt-X-again");
        p.CorruptPfn("corrupt-pfn-X2-again", head0 + (ulong)(X2 / PAGE_SIZE));
        p.Meminfo("after-corrupt-X2-again");
        Preads(p, fd, "pread-after-corrupt");
        p.KpageFlags("kpageflags-head0", head0);
        p.KpageFlags("kpageflags-X", head0 + (ulong)(X / PAGE_SIZE));
        p.KpageFlags("kpageflags-X2", head0 + (ulong)(X2 / PAGE_SIZE));
        p.Load("read-X2", "M", X2);
        p.Load("read-Y", "M", Y);

        // Folio 1: one madvise call over three raw pages.
        p.Madvise("madvise-folio1-3-pages", "M", HPAGE_2M + X, 3 * PAGE_SIZE, MADV_HWPOISON);
        p.Meminfo("after-madvise-3-pages");
        for (int i = 0; i < 3; i++)
            Pread(p, fd, $"pread-folio1-page{i}", HPAGE_2M + X + i * PAGE_SIZE, PAGE_SIZE);
        p.KpageFlags("kpageflags-head1", head1);
    }

    private static void Preads(Probe p, long fd, string step)
    {
        Pread(p, fd, step + "-X", X, PAGE_SIZE);
        Pread(p, fd, step + "-X2", X2, PAGE_SIZE);
        Pread(p, fd, step + "-Y", Y, PAGE_SIZE);
    }

    public static unsafe long Pread(Probe p, long fd, string step, long off, long len)
    {
        byte* buf = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)len);
        try
        {
            return p.Sys(step, "pread64", __NR_pread64, fd, (long)buf, len, off,
                extra: l => l.Hex("off", (ulong)off).Hex("len", (ulong)len));
        }
        finally { System.Runtime.InteropServices.NativeMemory.Free(buf); }
    }
}

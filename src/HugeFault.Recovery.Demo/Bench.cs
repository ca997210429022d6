using HugeFault.Recovery.Kernel;
using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Demo;

/// <summary>
/// A plain copy of one huge page into a fresh tmpfs mapping (same THP setting as the replacement): memcpy through the
/// checked copy, and pread() from a healthy hugetlb page. Measured under the same load as the recovery (workers
/// running, thread at the agent's nice value) and idle.
/// </summary>
internal static unsafe class Bench
{
    public sealed record Samples(List<long> Memcpy, List<long> Pread);

    /// <summary>On a thread of its own at <paramref name="nice"/> (what the agent thread runs at), <paramref name="reps"/> times.</summary>
    public static Samples Run(RecoveryAgent agent, int fd, byte* src, long srcFileOff, bool srcHealthy, long size, bool thp, int reps, int nice)
    {
        var s = new Samples([], []);
        var t = new Thread(() =>
        {
            if (nice != 0) LinuxKernel.Instance.Syscall(__NR_setpriority, 0, 0, nice);
            for (int r = 0; r < reps; r++)
            {
                s.Memcpy.Add(Memcpy(agent, src, size, thp));
                if (srcHealthy) s.Pread.Add(Pread(fd, srcFileOff, size, thp));
            }
        }) { Name = "bench" };
        t.Start();
        t.Join();
        return s;
    }

    private static long Memcpy(RecoveryAgent agent, byte* src, long size, bool thp)
    {
        byte* dst = Guest.TmpfsMapping(size, thp, out int dfd);
        long t = Guest.Now();
        for (long off = 0; off < size;)
        {
            nuint left = agent.CopyChecked(dst + off, src + off, (nuint)(size - off));
            off = size - (long)left;
            if (left != 0) off = (off & ~(PAGE_SIZE - 1)) + PAGE_SIZE; // a lost page of the source: skip it
        }
        t = Guest.Now() - t;
        Guest.Unmap(dst, size, dfd);
        return t;
    }

    private static long Pread(int fd, long fileOff, long size, bool thp)
    {
        byte* dst = Guest.TmpfsMapping(size, thp, out int dfd);
        long t = Guest.Now();
        long n = LinuxKernel.Instance.Syscall(__NR_pread64, fd, (long)dst, size, fileOff);
        t = Guest.Now() - t;
        Guest.Unmap(dst, size, dfd);
        return n == size ? t : -1;
    }

    public static long Median(IEnumerable<long> l)
    {
        var a = l.Where(x => x >= 0).Order().ToList();
        return a.Count == 0 ? 0 : a[a.Count / 2];
    }
}

using System.Globalization;
using System.Text;
using HugeFault.Recovery.Kernel;
using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Demo;

/// <summary>/proc/meminfo and the 1 GiB pool (sysfs), in kB / pages.</summary>
internal readonly record struct Meminfo(long MemFree, long Shmem, long ShmemHugePages, long HardwareCorrupted, long PageTables,
    long HugeTotal, long HugeFree, long HugeRsvd, long Huge1GTotal, long Huge1GFree)
{
    /// <summary>Parses meminfo text without allocating (the sampler runs while threads are held).</summary>
    public static Meminfo Parse(ReadOnlySpan<byte> text, long huge1GTotal, long huge1GFree) => new(
        Field(text, "MemFree:"u8), Field(text, "Shmem:"u8), Field(text, "ShmemHugePages:"u8), Field(text, "HardwareCorrupted:"u8),
        Field(text, "PageTables:"u8), Field(text, "HugePages_Total:"u8), Field(text, "HugePages_Free:"u8), Field(text, "HugePages_Rsvd:"u8),
        huge1GTotal, huge1GFree);

    private static long Field(ReadOnlySpan<byte> text, ReadOnlySpan<byte> key)
    {
        int at = text.IndexOf(key);
        if (at < 0) return -1;
        long v = 0;
        for (int i = at + key.Length; i < text.Length && text[i] != '\n'; i++)
            if (text[i] >= '0' && text[i] <= '9') v = v * 10 + (text[i] - '0');
        return v;
    }
}

/// <summary>What the demo needs from the guest: memory counters, the hugetlb memfd, error injection.</summary>
internal static unsafe class Guest
{
    private static readonly IKernel K = LinuxKernel.Instance;
    private const string Pool1G = "/sys/kernel/mm/hugepages/hugepages-1048576kB/";

    public static Meminfo ReadMeminfo()
    {
        var text = File.ReadAllBytes("/proc/meminfo");
        return Meminfo.Parse(text, ReadLong(Pool1G + "nr_hugepages"), ReadLong(Pool1G + "free_hugepages"));
    }

    public static long ReadLong(string path)
    {
        try { return long.Parse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture); }
        catch (IOException) { return -1; }
        catch (FormatException) { return -1; }
    }

    public static string? ReadText(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>memfd_create(MFD_HUGETLB | MFD_HUGE_2MB/1GB), ftruncate, mmap MAP_SHARED: the store's memory.</summary>
    public static int CreateStore(long size, long pageSize, out byte* baseAddr, out string error)
    {
        error = "";
        baseAddr = null;
        byte* name = stackalloc byte[] { (byte)'k', (byte)'v', 0 };
        long fd = K.Syscall(__NR_memfd_create, (long)name, MFD_CLOEXEC | MFD_HUGETLB | (pageSize == 1L << 30 ? MFD_HUGE_1GB : MFD_HUGE_2MB));
        if (fd < 0) { error = $"memfd_create(MFD_HUGETLB) failed with {ErrnoName(fd)}"; return -1; }
        long r = K.Syscall(__NR_ftruncate, fd, size);
        if (r < 0) { error = $"ftruncate failed with {ErrnoName(r)}"; return -1; }
        long p = K.Syscall(__NR_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p < 0 && p > -4096) { error = $"mmap of {size >> 20} MiB of hugetlb memory failed with {ErrnoName(p)} (is the pool large enough? HugePages_Free {ReadMeminfo().HugeFree})"; return -1; }
        baseAddr = (byte*)p;
        return (int)fd;
    }

    /// <summary>A fresh tmpfs memfd mapping of the given size (the plain-copy benchmark's destination).</summary>
    public static byte* TmpfsMapping(long size, bool thp, out int fd)
    {
        byte* name = stackalloc byte[] { (byte)'c', 0 };
        fd = (int)K.Syscall(__NR_memfd_create, (long)name, MFD_CLOEXEC);
        K.Syscall(__NR_ftruncate, fd, size);
        long p = K.Syscall(__NR_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (thp) K.Syscall(__NR_madvise, p, size, MADV_HUGEPAGE);
        return (byte*)p;
    }

    public static void Unmap(byte* p, long size, int fd)
    {
        K.Syscall(__NR_munmap, (long)p, size);
        K.Syscall(__NR_close, fd);
    }

    /// <summary>madvise(MADV_HWPOISON) of one 4 KiB page (root): memory_failure(pfn, MF_ACTION_REQUIRED | MF_SW_SIMULATED); the caller gets BUS_MCEERR_AR.</summary>
    public static long MadvHwpoison(byte* addr) => K.Syscall(__NR_madvise, (long)addr, PAGE_SIZE, MADV_HWPOISON);

    /// <summary>The pfn behind a (populated) address, from /proc/self/pagemap (bits 0-54; root).</summary>
    public static long PfnOf(byte* addr)
    {
        using var f = File.OpenHandle("/proc/self/pagemap", FileMode.Open, FileAccess.Read);
        Span<byte> e = stackalloc byte[8];
        if (RandomAccess.Read(f, e, (long)((ulong)addr / PAGE_SIZE) * 8) != 8) return -1;
        ulong v = BitConverter.ToUInt64(e);
        return (v & (1UL << 63)) == 0 ? -1 : (long)(v & ((1UL << 55) - 1));
    }

    /// <summary>debugfs hwpoison/corrupt-pfn (hwpoison-inject.ko): memory_failure(pfn, MF_SW_SIMULATED), no signal to the writer; early-kill threads get BUS_MCEERR_AO.</summary>
    public static string? CorruptPfn(long pfn)
    {
        try { File.WriteAllText("/sys/kernel/debug/hwpoison/corrupt-pfn", $"0x{pfn:x}\n"); return null; }
        catch (IOException e) { return e.Message; }
        catch (UnauthorizedAccessException e) { return e.Message; }
    }

    /// <summary>Sets /sys/kernel/mm/transparent_hugepage/shmem_enabled (the guest's knob for tmpfs THP).</summary>
    public static string? SetShmemThp(string mode)
    {
        try { File.WriteAllText("/sys/kernel/mm/transparent_hugepage/shmem_enabled", mode); return null; }
        catch (IOException e) { return e.Message; }
        catch (UnauthorizedAccessException e) { return e.Message; }
    }

    public static long Now() => System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000_000L / System.Diagnostics.Stopwatch.Frequency);

    public static int Tid() => (int)K.Syscall(__NR_gettid);
}

/// <summary>Samples meminfo every few ms without allocating; keeps the peak Shmem and the lowest MemFree seen.</summary>
internal sealed class MeminfoSampler
{
    private readonly Thread _t;
    private volatile bool _stop;
    public long PeakShmem, MinMemFree = long.MaxValue, Samples;

    private volatile bool _paused, _parked;

    /// <summary>Stops sampling until <see cref="Resume"/> (the benchmark's own tmpfs copies are not the agent's memory); returns once no sample is in flight.</summary>
    public void Pause()
    {
        _paused = true;
        while (!_parked && _t.IsAlive) Thread.Sleep(1);
    }

    public void Resume() => _paused = false;

    public MeminfoSampler()
    {
        _t = new Thread(Run) { IsBackground = true, Name = "meminfo" };
        _t.Start();
    }

    private void Run()
    {
        using var f = File.OpenHandle("/proc/meminfo", FileMode.Open, FileAccess.Read);
        var buf = new byte[8192];
        while (!_stop)
        {
            _parked = _paused;
            if (_paused) { Thread.Sleep(1); continue; }
            int n = RandomAccess.Read(f, buf, 0);
            var m = Meminfo.Parse(buf.AsSpan(0, n), 0, 0);
            if (m.Shmem > PeakShmem) PeakShmem = m.Shmem;
            if (m.MemFree >= 0 && m.MemFree < MinMemFree) MinMemFree = m.MemFree;
            Samples++;
            Thread.Sleep(2);
        }
    }

    public void Stop()
    {
        _stop = true;
        _t.Join();
    }
}

/// <summary>The kernel log since the demo started (/dev/kmsg, non-blocking): what memory_failure() said.</summary>
internal sealed unsafe class Kmsg
{
    private readonly long _fd;

    public Kmsg()
    {
        _fd = KernelCalls.OpenAt(LinuxKernel.Instance, "/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (_fd >= 0) LinuxKernel.Instance.Syscall(8 /* __NR_lseek */, _fd, 0, 2 /* SEEK_END */);
    }

    /// <summary>Messages logged since the last call ("prio,seq,ts,flags;text" records, text only).</summary>
    public List<string> Drain()
    {
        var list = new List<string>();
        if (_fd < 0) return list;
        byte* buf = stackalloc byte[8192];
        for (;;)
        {
            long n = LinuxKernel.Instance.Syscall(__NR_read, _fd, (long)buf, 8192);
            if (n == -EPIPE) continue; // records were overwritten: go on with the next one
            if (n <= 0) break;
            var rec = Encoding.UTF8.GetString(buf, (int)n);
            int semi = rec.IndexOf(';');
            list.Add((semi >= 0 ? rec[(semi + 1)..] : rec).Split('\n')[0]);
        }
        return list;
    }

    private const int EPIPE = 32;
}

using System.Diagnostics;
using System.Text;
using HugeFault.RealRunner.Native;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Probing;

/// <summary>A named region of this process's address space, so signal addresses print as offsets.</summary>
internal sealed record Mapping(string Name, ulong Base, long Length);

/// <summary>
/// The context one probe runs in: raw syscalls through <see cref="ExceptionTable"/>, one JSON line per
/// step on stdout (fd 1, written with write(2) so a fork child needs no runtime I/O state), the
/// signals recorded since the previous line, and /proc/meminfo deltas.
/// </summary>
internal sealed unsafe class Probe
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<Mapping> _maps = [];
    private Meminfo? _lastMeminfo;
    private long _kmsgFd = -1;

    public Probe(string name)
    {
        Name = name;
        ExceptionTable.Install();
        KernelRelease = Uname();
    }

    public string Name { get; }
    public string KernelRelease { get; }

    /// <summary>"A" for the process that started the probe; a fork child gets its own label.</summary>
    public string Proc { get; private set; } = "A";

    // ---------------------------------------------------------------- output

    public JsonLine Line(string step, string? syscall = null)
    {
        var l = new JsonLine().Str("probe", Name).Str("kernel", KernelRelease).Str("proc", Proc)
            .Num("t_ms", _clock.Elapsed.TotalMilliseconds).Str("step", step);
        if (syscall is not null) l.Str("syscall", syscall);
        return l;
    }

    /// <summary>Appends the signals recorded since the last line, then writes the line.</summary>
    public void Emit(JsonLine l)
    {
        var sigs = ExceptionTable.Drain();
        l.Raw("signals", SignalsJson(sigs));
        WriteOut(l.ToString() + "\n");
    }

    public void Note(string step, string text) => Emit(Line(step).Str("note", text));

    private string SignalsJson(List<SignalRecord> sigs)
    {
        var sb = new StringBuilder("[");
        for (int i = 0; i < sigs.Count; i++)
        {
            var s = sigs[i];
            var o = new JsonLine().Num("signo", s.Signo).Num("si_code", s.Code)
                .Str("si_code_name", s.Signo == SIGBUS ? BusCodeName(s.Code) : "code" + s.Code);
            var m = _maps.LastOrDefault(m => s.Addr >= m.Base && s.Addr < m.Base + (ulong)m.Length);
            if (m is not null) o.Str("map", m.Name).Hex("off", s.Addr - m.Base);
            o.Hex("si_addr", s.Addr).Num("si_addr_lsb", s.AddrLsb).Str("site", s.ActionName);
            long so = ExceptionTable.StubOffset(s.Rip);
            if (so >= 0) o.Hex("rip_stub_off", (ulong)so); else o.Hex("rip", s.Rip);
            if (i > 0) sb.Append(',');
            sb.Append(o);
        }
        return sb.Append(']').ToString();
    }

    public static void WriteOut(string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        fixed (byte* p = b)
        {
            long done = 0;
            while (done < b.Length)
            {
                long r = ExceptionTable.Syscall(__NR_write, 1, (long)(p + done), b.Length - done);
                if (r == -EINTR) continue;
                if (r <= 0) return;
                done += r;
            }
        }
    }

    private static JsonLine Result(JsonLine l, long r)
    {
        l.Num("ret", r < 0 && r > -4096 ? -1 : r);
        if (r < 0 && r > -4096) l.Num("errno", -r).Str("errno_name", ErrnoName(-r));
        return l;
    }

    // ---------------------------------------------------------------- syscalls with a line each

    /// <summary>Any syscall, one line: ret (−1 on error), errno, errno_name, signals.</summary>
    public long Sys(string step, string name, long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
        long a5 = 0, long a6 = 0, Action<JsonLine>? extra = null)
    {
        long r = ExceptionTable.Syscall(nr, a1, a2, a3, a4, a5, a6);
        var l = Result(Line(step, name), r);
        extra?.Invoke(l);
        Emit(l);
        return r;
    }

    public long MemfdCreate(string step, long flags)
    {
        byte* n = stackalloc byte[] { (byte)'h', (byte)'f', 0 };
        return Sys(step, "memfd_create", __NR_memfd_create, (long)n, flags,
            extra: l => l.Hex("flags", (ulong)flags));
    }

    public long Ftruncate(string step, long fd, long len)
        => Sys(step, "ftruncate", __NR_ftruncate, fd, len, extra: l => l.Hex("len", (ulong)len));

    /// <summary>mmap; on success the region is remembered under <paramref name="name"/>.</summary>
    public long Mmap(string step, string name, long len, long prot, long flags, long fd = -1, long off = 0)
    {
        long r = ExceptionTable.Syscall(__NR_mmap, 0, len, prot, flags, fd, off);
        var l = (r < 0 && r > -4096 ? Result(Line(step, "mmap"), r) : Line(step, "mmap").Hex("addr", (ulong)r)).Str("map", name).Hex("len", (ulong)len).Hex("flags", (ulong)flags);
        Emit(l);
        if (r >= 0 || r <= -4096) _maps.Add(new Mapping(name, (ulong)r, len));
        return r;
    }

    public Mapping Map(string name) => _maps.Last(m => m.Name == name);

    public byte* At(string name, long off) => (byte*)(Map(name).Base + (ulong)off);

    public long Munmap(string step, string name)
    {
        var m = Map(name);
        return Sys(step, "munmap", __NR_munmap, (long)m.Base, m.Length, extra: l => l.Str("map", name));
    }

    public long Madvise(string step, string name, long off, long len, long advice)
        => Sys(step, "madvise", __NR_madvise, (long)At(name, off), len, advice,
            extra: l => l.Str("map", name).Hex("off", (ulong)off).Hex("len", (ulong)len).Num("advice", advice));

    public long Close(string step, long fd) => Sys(step, "close", __NR_close, fd);

    /// <summary>Loads one byte through the exception table (−1 = SIGBUS, see signals).</summary>
    public long Load(string step, string name, long off, Action<JsonLine>? extra = null)
    {
        long v = ExceptionTable.LoadByte(At(name, off));
        var l = Line(step, "load").Str("map", name).Hex("off", (ulong)off).Num("value", v).Bool("faulted", v < 0);
        extra?.Invoke(l);
        Emit(l);
        return v;
    }

    public long Store(string step, string name, long off, byte value)
    {
        long v = ExceptionTable.StoreByte(At(name, off), value);
        Emit(Line(step, "store").Str("map", name).Hex("off", (ulong)off).Num("value", value).Bool("faulted", v < 0));
        return v;
    }

    /// <summary>Stores one byte every <paramref name="stride"/> bytes; one line with the fault count.</summary>
    public long Touch(string step, string name, long stride = HPAGE_2M, long from = 0, long len = -1)
    {
        var m = Map(name);
        if (len < 0) len = m.Length - from;
        long faults = 0, n = 0;
        for (long off = from; off < from + len; off += stride, n++)
            if (ExceptionTable.StoreByte(At(name, off), (byte)(off >> 12)) < 0) faults++;
        Emit(Line(step, "store-loop").Str("map", name).Hex("from", (ulong)from).Hex("len", (ulong)len)
            .Hex("stride", (ulong)stride).Num("stores", n).Num("faulted", faults));
        return faults;
    }

    /// <summary>Copies a mapped range with rep movsb; reports how many bytes were copied before a fault.</summary>
    public long CopyFrom(string step, string name, long off, long len)
    {
        byte* dst = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)len);
        try
        {
            long left = ExceptionTable.CopyMc(dst, At(name, off), len);
            Emit(Line(step, "copy_mc").Str("map", name).Hex("off", (ulong)off).Hex("len", (ulong)len)
                .Hex("copied", (ulong)(len - left)).Hex("not_copied", (ulong)left));
            return left;
        }
        finally { System.Runtime.InteropServices.NativeMemory.Free(dst); }
    }

    // ---------------------------------------------------------------- files, proc, sys

    public long OpenPath(string path, long flags)
    {
        byte[] b = Encoding.ASCII.GetBytes(path + "\0");
        fixed (byte* p = b) return ExceptionTable.Syscall(__NR_open, (long)p, flags | O_CLOEXEC, 0);
    }

    /// <summary>Reads a whole (small) file with raw syscalls; null if it cannot be opened.</summary>
    public string? ReadText(string path)
    {
        long fd = OpenPath(path, O_RDONLY);
        if (fd < 0) return null;
        var sb = new StringBuilder();
        byte* buf = stackalloc byte[4096];
        long r;
        while ((r = ExceptionTable.Syscall(__NR_read, fd, (long)buf, 4096)) > 0)
            sb.Append(Encoding.ASCII.GetString(buf, (int)r));
        ExceptionTable.Syscall(__NR_close, fd);
        return sb.ToString();
    }

    /// <summary>Writes text to a /proc or /sys file (one write call); reports ret/errno.</summary>
    public long WriteText(string step, string path, string text)
    {
        long fd = OpenPath(path, O_WRONLY);
        long r = fd;
        if (fd >= 0)
        {
            byte[] b = Encoding.ASCII.GetBytes(text);
            fixed (byte* p = b) r = ExceptionTable.Syscall(__NR_write, fd, (long)p, b.Length);
            ExceptionTable.Syscall(__NR_close, fd);
        }
        Emit(Result(Line(step, "write").Str("path", path).Str("text", text.TrimEnd()), r)
            .Bool("open_failed", fd < 0));
        return r;
    }

    /// <summary>/proc/meminfo snapshot with deltas against the previous snapshot of this process.</summary>
    public Meminfo Meminfo(string step)
    {
        var m = Probing.Meminfo.Parse(ReadText("/proc/meminfo") ?? "");
        var l = Line(step, "meminfo").Num("total", m.Total).Num("free", m.Free).Num("rsvd", m.Rsvd)
            .Num("surp", m.Surp).Num("hwcorrupted_kb", m.HardwareCorruptedKb);
        if (_lastMeminfo is { } p)
            l.Num("d_total", m.Total - p.Total).Num("d_free", m.Free - p.Free).Num("d_rsvd", m.Rsvd - p.Rsvd)
             .Num("d_surp", m.Surp - p.Surp).Num("d_hwcorrupted_kb", m.HardwareCorruptedKb - p.HardwareCorruptedKb);
        _lastMeminfo = m;
        Emit(l);
        return m;
    }

    /// <summary>Per-size pool counters from sysfs (/proc/meminfo shows only the default size).</summary>
    public void PoolSysfs(string step, long sizeKb)
    {
        string dir = $"/sys/kernel/mm/hugepages/hugepages-{sizeKb}kB/";
        long Read(string f) => long.TryParse((ReadText(dir + f) ?? "").Trim(), out long v) ? v : -1;
        var hwc = Probing.Meminfo.Parse(ReadText("/proc/meminfo") ?? "").HardwareCorruptedKb;
        Emit(Line(step, "pool-sysfs").Num("size_kb", sizeKb).Num("nr_hugepages", Read("nr_hugepages"))
            .Num("free_hugepages", Read("free_hugepages")).Num("resv_hugepages", Read("resv_hugepages"))
            .Num("surplus_hugepages", Read("surplus_hugepages")).Num("hwcorrupted_kb", hwc));
    }

    /// <summary>The pfn behind a virtual address of this process (/proc/self/pagemap; root sees pfns).</summary>
    public ulong Pfn(string step, string name, long off)
    {
        ulong va = (ulong)At(name, off);
        long fd = OpenPath("/proc/self/pagemap", O_RDONLY);
        ulong e = 0;
        long r = fd < 0 ? fd : ExceptionTable.Syscall(__NR_pread64, fd, (long)&e, 8, (long)(va / 4096 * 8));
        if (fd >= 0) ExceptionTable.Syscall(__NR_close, fd);
        bool present = (e >> 63 & 1) != 0;
        ulong pfn = e & ((1UL << 55) - 1);
        Emit(Result(Line(step, "pagemap").Str("map", name).Hex("off", (ulong)off), r < 0 ? r : 0)
            .Hex("entry", e).Bool("present", present).Hex("pfn", pfn));
        return present ? pfn : 0;
    }

    /// <summary>/proc/kpageflags of a pfn, raw and with the bits the model cares about named.</summary>
    public ulong KpageFlags(string step, ulong pfn)
    {
        long fd = OpenPath("/proc/kpageflags", O_RDONLY);
        ulong f = 0;
        long r = fd < 0 ? fd : ExceptionTable.Syscall(__NR_pread64, fd, (long)&f, 8, (long)(pfn * 8));
        if (fd >= 0) ExceptionTable.Syscall(__NR_close, fd);
        var names = new List<string>();
        (int bit, string n)[] known = [(4, "UPTODATE"), (5, "LRU"), (10, "BUDDY"), (11, "MMAP"), (12, "ANON"),
            (15, "COMPOUND_HEAD"), (16, "COMPOUND_TAIL"), (17, "HUGE"), (19, "HWPOISON"), (20, "NOPAGE")];
        foreach (var (bit, n) in known) if ((f >> bit & 1) != 0) names.Add(n);
        Emit(Result(Line(step, "kpageflags").Hex("pfn", pfn), r < 0 ? r : 0).Hex("flags", f)
            .Str("names", string.Join("|", names)));
        return f;
    }

    /// <summary>echo pfn &gt; /sys/kernel/debug/hwpoison/corrupt-pfn (memory_failure(pfn, MF_SW_SIMULATED)).</summary>
    public long CorruptPfn(string step, ulong pfn)
        => WriteText(step, "/sys/kernel/debug/hwpoison/corrupt-pfn", "0x" + pfn.ToString("x") + "\n");

    // ---------------------------------------------------------------- processes

    /// <summary>fork(); the child runs <paramref name="child"/> as process <paramref name="label"/> and exits.</summary>
    public int Fork(string step, string label, Action child)
    {
        int pid = Libc.fork();
        if (pid == 0)
        {
            Proc = label;
            int code = 0;
            try { child(); }
            catch (Exception e) { Note("child-exception", e.ToString()); code = 99; }
            ExceptionTable.Syscall(__NR_exit_group, code);
        }
        Emit(Line(step, "fork").Num("ret", pid).Str("child", label));
        return pid;
    }

    /// <summary>wait4 for a child; reports exit code or terminating signal.</summary>
    public long Wait(string step, int pid)
    {
        int status = 0;
        long r;
        do r = ExceptionTable.Syscall(__NR_wait4, pid, (long)&status, 0, 0); while (r == -EINTR);
        var l = Result(Line(step, "wait4"), r).Hex("status", (ulong)(uint)status);
        if ((status & 0x7f) == 0) l.Num("exit_code", (status >> 8) & 0xff);
        else l.Num("term_signal", status & 0x7f).Bool("core", (status & 0x80) != 0);
        Emit(l);
        return r;
    }

    public (long Read, long Write) Pipe()
    {
        int* fds = stackalloc int[2];
        if (ExceptionTable.Syscall(__NR_pipe, (long)fds) != 0) throw new InvalidOperationException("pipe");
        return (fds[0], fds[1]);
    }

    public static void Send(long fd) { byte b = 1; ExceptionTable.Syscall(__NR_write, fd, (long)&b, 1); }

    /// <summary>Blocks in read(2) (inside the syscall stub, so an AO signal lands at a known site).</summary>
    public static long Receive(long fd)
    {
        byte b = 0;
        long r;
        do r = ExceptionTable.Syscall(__NR_read, fd, (long)&b, 1); while (r == -EINTR);
        return r;
    }

    public static void SleepMs(long ms)
    {
        long* ts = stackalloc long[2];
        ts[0] = ms / 1000; ts[1] = ms % 1000 * 1_000_000;
        ExceptionTable.Syscall(__NR_nanosleep, (long)ts, 0);
    }

    // ---------------------------------------------------------------- kernel log

    /// <summary>Starts collecting /dev/kmsg records from now on.</summary>
    public void KmsgStart()
    {
        _kmsgFd = OpenPath("/dev/kmsg", O_RDONLY | O_NONBLOCK);
        if (_kmsgFd >= 0) ExceptionTable.Syscall(__NR_lseek, _kmsgFd, 0, SEEK_END);
    }

    /// <summary>Emits every kernel log record since <see cref="KmsgStart"/> as a "kmsg" line.</summary>
    public void KmsgDrain()
    {
        if (_kmsgFd < 0) return;
        byte* buf = stackalloc byte[8192];
        long r;
        while ((r = ExceptionTable.Syscall(__NR_read, _kmsgFd, (long)buf, 8192)) > 0 || r == -32 /*EPIPE: overwritten*/)
        {
            if (r < 0) continue;
            string rec = Encoding.UTF8.GetString(buf, (int)r);
            int semi = rec.IndexOf(';');
            string[] head = rec[..Math.Max(semi, 0)].Split(',');
            string text = rec[(semi + 1)..].Split('\n')[0];
            var l = Line("kmsg").Str("text", text);
            if (head.Length >= 3) l.Num("level", long.Parse(head[0]) & 7).Num("ts_us", long.Parse(head[2]));
            WriteOut(l.ToString() + "\n");
        }
    }

    private static string Uname()
    {
        byte* u = stackalloc byte[6 * 65];
        if (ExceptionTable.Syscall(__NR_uname, (long)u) != 0) return "?";
        return new string((sbyte*)(u + 2 * 65));
    }
}

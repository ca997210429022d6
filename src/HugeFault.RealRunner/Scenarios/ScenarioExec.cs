using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using HugeFault.RealRunner.Native;
using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Scenarios;

/// <summary>
/// Runs a scenario plan (the JSON step list that <c>hugefault oracle</c> derives from a scenario YAML on
/// the host) with real syscalls and prints one JSON line per step in the oracle trace format.
/// </summary>
/// <remarks>
/// <para>Processes: every scenario process is a real process. The first one (usually A) is the
/// controller: it walks the steps, executes its own, and sends the others to their process over a
/// command pipe; the process executes the step in its own address space and answers over a result
/// pipe. Pipes for every process name the scenario can ever have (its processes plus all fork
/// children) are created before anything else, so every process inherits all of them and a fork
/// child of any process can serve at once. Why this and not "run the child's steps in the child":
/// steps of different processes interleave (A injects, then B reads), and only one process may
/// decide the order. After each step the controller asks every live process for the signals it
/// recorded (a process waiting for a command sits in read(2) inside the syscall stub, so an
/// asynchronous BUS_MCEERR_AO lands at a known site), so every signal is attributed to the step
/// that caused it, with its receiver.</para>
/// <para>A load or store on a range registered with userfaultfd runs in its own thread: if it has
/// not finished after a short wait the step's outcome is "blocked in userfaultfd", and the thread is
/// joined after the next UFFDIO_COPY/UFFDIO_POISON (whose step then carries its signals), as the
/// model resumes blocked accesses after a resolving ioctl.</para>
/// </remarks>
internal sealed unsafe partial class ScenarioExec
{
    private readonly JsonElement _plan;
    private readonly string _name;
    private readonly string _kernel;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Dictionary<string, (long CmdR, long CmdW, long ResR, long ResW)> _pipes = new();
    private readonly Dictionary<string, int> _pids = new();
    private readonly HashSet<string> _dead = new();
    private readonly List<string> _order = new();
    private string _me = "";
    private long _kmsg = -1;

    // per process state (a fork child gets a copy of its parent's)
    private readonly Dictionary<string, (ulong Base, long Len)> _maps = new();
    /// <summary>Mapping names, newest last: a signal address is named after the newest live mapping holding it.</summary>
    private readonly List<string> _mapOrder = new();
    private readonly Dictionary<string, long> _fds = new();
    private readonly Dictionary<string, ulong> _vars = new();
    private readonly HashSet<string> _uffdMaps = new();
    private readonly List<SignalRecord> _pending = new();
    private readonly List<Thread> _blocked = new();

    public ScenarioExec(JsonElement plan, string kernel)
    {
        _plan = plan;
        _name = plan.GetProperty("name").GetString() ?? "?";
        _kernel = kernel;
    }

    // ------------------------------------------------------------------ controller

    public int Run()
    {
        ExceptionTable.Install();
        foreach (var p in _plan.GetProperty("process_names").EnumerateArray()) _order.Add(p.GetString()!);
        int* fds = stackalloc int[4];
        foreach (var n in _order)
        {
            ExceptionTable.Syscall(__NR_pipe, (long)fds);
            ExceptionTable.Syscall(__NR_pipe, (long)(fds + 2));
            _pipes[n] = (fds[0], fds[1], fds[2], fds[3]);
        }
        _kmsg = OpenPath("/dev/kmsg", O_RDONLY | O_NONBLOCK);
        if (_kmsg >= 0) ExceptionTable.Syscall(__NR_lseek, _kmsg, 0, SEEK_END);
        var initial = _plan.GetProperty("processes").EnumerateArray().Select(e => e.GetString()!).ToList();
        // A first process that must be able to die (sigbus: default) is served like the others, by a controller
        // that is no scenario process; otherwise the controller is the first process.
        bool controllerServes = SigbusDefault(initial[0]);
        _me = controllerServes ? "(controller)" : initial[0];
        SetComm(_me);
        // orphans of a process that died are re-parented here, not to /init, so their own death can still be read
        ExceptionTable.Syscall(__NR_prctl, 36 /*PR_SET_CHILD_SUBREAPER*/, 1);
        foreach (var (k, v) in Obj(_plan, "sysctl")) WriteText(k, v.GetString()!);
        foreach (var n in controllerServes ? initial : initial.Skip(1))
        {
            int pid = Libc.fork();
            if (pid == 0) { _me = n; SetComm(n); StartProcess(); Serve(); }
            _pids[n] = pid;
        }
        Out(new JsonLine().Str("kind", "start").Str("scenario", _name).Str("kernel", _kernel)
            .Raw("counters", Counters()).Raw("log", Kmsg()));
        foreach (var step in _plan.GetProperty("steps").EnumerateArray())
        {
            int i = step.GetProperty("i").GetInt32();
            string op = step.GetProperty("op").GetString()!;
            string who = Str(step, "as") ?? _me; // host steps (no as:) run in the controller
            var line = new JsonLine().Str("kind", "step").Num("i", i).Str("op", op).Str("as", who);
            if (Str(step, "skip") is { } why)
            {
                Out(line.Str("skipped", why));
                continue;
            }
            double t0 = _clock.Elapsed.TotalMilliseconds;
            string result;
            if (_dead.Contains(ProcessOf(who))) result = "{\"note\":\"process is dead\"}";
            else if (who == _me) result = Exec(step);
            else result = Remote(who, 1, i);
            AfterStep(op, who, step, result);
            if (op == "exit") _dead.Add(who);
            var deaths = Deaths();
            // signals of every live process, in process order (a thread's come with its process's, by tid)
            var sigs = new StringBuilder("[");
            foreach (var n in _order)
            {
                if (_dead.Contains(n) || _threadOf.ContainsKey(n) || (n != _me && !_pids.ContainsKey(n))) continue;
                string s = n == _me ? SignalsJson() : Remote(n, 2, i);
                if (s.Length > 2) { if (sigs.Length > 1) sigs.Append(','); sigs.Append(s, 1, s.Length - 2); }
            }
            sigs.Append(']');
            line.Raw("result", result).Raw("signals", sigs.ToString()).Raw("counters", Counters()).Raw("log", Kmsg())
                .Num("ms", _clock.Elapsed.TotalMilliseconds - t0);
            if (deaths.Length > 2) line.Raw("deaths", deaths);
            if (PageFlagsJson(step) is { } kpf) line.Raw("kpageflags", kpf);
            Out(line);
        }
        foreach (var n in _order) if (n != _me && _pids.ContainsKey(n) && !_dead.Contains(ProcessOf(n))) Send(n, 3, 0);
        Out(new JsonLine().Str("kind", "end").Num("ms", _clock.Elapsed.TotalMilliseconds));
        return 0;
    }

    /// <summary>Sends a command; waits for the answer unless it is "exit". A process that died answers "null".</summary>
    private string Remote(string who, int kind, int step)
    {
        if (!Send(who, kind, step)) { _dead.Add(who); return kind == 2 ? "[]" : "{\"note\":\"process is dead\"}"; }
        var (_, _, resR, _) = _pipes[who];
        // poll with a timeout so a process killed by a signal does not hang the controller
        long* pfd = stackalloc long[1];
        *(int*)pfd = (int)resR; ((short*)pfd)[2] = 1; ((short*)pfd)[3] = 0;
        int waited = 0;
        while (true)
        {
            long r = ExceptionTable.Syscall(7 /*poll*/, (long)pfd, 1, 200);
            if (r > 0) break;
            waited += 200;
            if (DeathOf(ProcessOf(who)) is not null || waited > 60_000)
            { return kind == 2 ? "[]" : "{\"note\":\"process died\"}"; }
        }
        int len = 0;
        ReadFull(resR, (byte*)&len, 4);
        var buf = new byte[len];
        fixed (byte* b = buf) ReadFull(resR, b, len);
        return Encoding.UTF8.GetString(buf);
    }

    private bool Send(string who, int kind, int step)
    {
        long* cmd = stackalloc long[1];
        ((int*)cmd)[0] = kind; ((int*)cmd)[1] = step;
        return ExceptionTable.Syscall(__NR_write, _pipes[who].CmdW, (long)cmd, 8) == 8;
    }

    // ------------------------------------------------------------------ a served process

    private void Serve()
    {
        var (cmdR, _, _, resW) = _pipes[_me];
        var steps = _plan.GetProperty("steps").EnumerateArray().ToDictionary(s => s.GetProperty("i").GetInt32());
        while (true)
        {
            long cmd = 0;
            if (ReadFull(cmdR, (byte*)&cmd, 8) != 8) break;
            int kind = ((int*)&cmd)[0], step = ((int*)&cmd)[1];
            if (kind == 3) break;
            string ans = kind == 1 ? Exec(steps[step]) : SignalsJson();
            byte[] b = Encoding.UTF8.GetBytes(ans);
            int len = b.Length;
            WriteFull(resW, (byte*)&len, 4);
            fixed (byte* p = b) WriteFull(resW, p, len);
            if (kind == 1 && steps[step].GetProperty("op").GetString() == "exit") break;
        }
        ExceptionTable.Syscall(__NR_exit_group, 0);
    }

    // ------------------------------------------------------------------ executing one step

    private string Exec(JsonElement step)
    {
        string op = step.GetProperty("op").GetString()!;
        var a = step.TryGetProperty("args", out var aa) ? aa : default;
        var r = new JsonLine();
        try { ExecOp(op, a, r); }
        catch (Exception e) { r.Str("error", e.GetType().Name + ": " + e.Message); }
        return r.ToString();
    }

    private static JsonLine Ret(JsonLine l, long r)
    {
        l.Num("ret", r < 0 && r > -4096 ? -1 : r);
        if (r < 0 && r > -4096) l.Str("errno", ErrnoName(-r));
        return l;
    }

    private void ExecOp(string op, JsonElement a, JsonLine r)
    {
        switch (op)
        {
            case "memfd_create":
            {
                byte[] n = Encoding.ASCII.GetBytes(Str(a, "name") + "\0");
                long fd;
                fixed (byte* p = n) fd = ExceptionTable.Syscall(__NR_memfd_create, (long)p, Num(a, "flags"));
                if (fd >= 0) _fds[Str(a, "fd")!] = fd;
                Ret(r, fd);
                break;
            }
            case "close": Ret(r, ExceptionTable.Syscall(__NR_close, Fd(a))); break;
            case "ftruncate": Ret(r, ExceptionTable.Syscall(__NR_ftruncate, Fd(a), Num(a, "length"))); break;
            case "fallocate": Ret(r, ExceptionTable.Syscall(__NR_fallocate, Fd(a), Num(a, "mode"), Num(a, "offset"), Num(a, "length"))); break;
            case "lseek": Ret(r, ExceptionTable.Syscall(__NR_lseek, Fd(a), Num(a, "offset"), Num(a, "whence"))); break;
            case "read":
            case "pread":
            {
                long fd = Fd(a), len = Num(a, "length");
                long pos = op == "read" ? ExceptionTable.Syscall(__NR_lseek, fd, 0, SEEK_CUR) : Num(a, "offset");
                byte* buf = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)Math.Max(len, 1));
                long res = op == "read" ? ExceptionTable.Syscall(__NR_read, fd, (long)buf, len)
                    : ExceptionTable.Syscall(__NR_pread64, fd, (long)buf, len, Num(a, "offset"));
                Ret(r, res);
                DataCheck(a, r, buf, Math.Max(res, 0), pos);
                System.Runtime.InteropServices.NativeMemory.Free(buf);
                break;
            }
            case "read_loop":
            {
                long fd = Fd(a), chunk = Num(a, "chunk");
                long pos = ExceptionTable.Syscall(__NR_lseek, fd, 0, SEEK_CUR);
                var all = new List<byte>();
                byte* buf = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)chunk);
                long total = 0, res; int calls = 0;
                do
                {
                    res = ExceptionTable.Syscall(__NR_read, fd, (long)buf, chunk); calls++;
                    if (res > 0) { total += res; all.AddRange(new ReadOnlySpan<byte>(buf, (int)res)); }
                } while (res > 0 && calls < 1_000_000);
                System.Runtime.InteropServices.NativeMemory.Free(buf);
                r.Num("ret", total);
                if (res < 0) r.Str("errno", ErrnoName(-res));
                r.Num("calls", calls);
                var arr = all.ToArray();
                fixed (byte* p = arr) DataCheck(a, r, p, total, pos);
                break;
            }
            case "mmap":
            {
                string? fdn = Str(a, "fd");
                long fd = fdn is null ? -1 : _fds.GetValueOrDefault(fdn, -1);
                long len = Num(a, "length");
                long res = ExceptionTable.Syscall(__NR_mmap, 0, len, Num(a, "prot"), Num(a, "flags"), fd, Num(a, "offset"));
                if (res >= 0 || res <= -4096) { _maps[Str(a, "name")!] = ((ulong)res, len); _mapOrder.Add(Str(a, "name")!); }
                Ret(r, res);
                break;
            }
            case "munmap":
            {
                var m = _maps[Str(a, "map")!];
                long off = Num(a, "offset"), len = Num(a, "length");
                if (len < 0) len = m.Len - off;
                long res = ExceptionTable.Syscall(__NR_munmap, (long)m.Base + off, len);
                if (res == 0)
                {
                    // keep naming what is left: a whole unmap forgets the name, a head or tail unmap shrinks it
                    string n = Str(a, "map")!;
                    if (off == 0 && len >= m.Len) { _maps.Remove(n); _mapOrder.Remove(n); }
                    else if (off + len >= m.Len) _maps[n] = (m.Base, off);
                }
                Ret(r, res);
                break;
            }
            case "madvise":
            {
                var m = _maps[Str(a, "map")!];
                Ret(r, ExceptionTable.Syscall(__NR_madvise, (long)m.Base + Num(a, "offset"), Num(a, "length"), Num(a, "advice")));
                break;
            }
            case "fork":
            {
                string child = Str(a, "child")!;
                var readers = ForkEventReaders(); // with UFFD_FEATURE_EVENT_FORK, fork() waits until the event is read
                int pid = Libc.fork();
                if (pid == 0)
                {
                    _me = child; SetComm(child);
                    _pending.Clear(); ExceptionTable.Drain();
                    _threadOf.Clear(); _tidNames.Clear(); // fork() keeps only the calling thread
                    StartProcess();
                    Serve();
                }
                foreach (var t in readers) t.Join(5000);
                r.Num("ret", pid);
                break;
            }
            case "exit": r.Num("ret", 0); break;
            case "prctl": Ret(r, ExceptionTable.Syscall(__NR_prctl, PR_MCE_KILL, Num(a, "arg2"), Num(a, "arg3"), 0, 0)); break;
            case "sysctl":
            case "nr_hugepages": Ret(r, WriteText(Str(a, "path")!, Str(a, "value")!)); break;
            case "store":
            case "load": Access(op == "store", a, r); break;
            case "corrupt_pfn":
            case "unpoison_pfn":
            {
                ulong pfn = PfnArg(a);
                Ret(r, WriteText(op == "corrupt_pfn" ? "/sys/kernel/debug/hwpoison/corrupt-pfn" : "/sys/kernel/debug/hwpoison/unpoison-pfn",
                    "0x" + pfn.ToString("x", CultureInfo.InvariantCulture) + "\n"));
                break;
            }
            case "pfn_of":
            {
                var m = _maps[Str(a, "map")!];
                ulong pfn = Pagemap(m.Base + (ulong)Num(a, "offset"));
                _vars[Str(a, "save")!] = pfn;
                if (pfn == 0) Ret(r, -ENOENT); else r.Num("ret", (long)pfn);
                break;
            }
            case "userfaultfd":
            {
                long fd = ExceptionTable.Syscall(__NR_userfaultfd, O_CLOEXEC);
                if (fd >= 0)
                {
                    ulong* api = stackalloc ulong[3];
                    api[0] = UFFD_API; api[1] = (ulong)Num(a, "features") | UFFD_FEATURE_MISSING_HUGETLBFS; api[2] = 0;
                    long ar = ExceptionTable.Syscall(__NR_ioctl, fd, UFFDIO_API, (long)api);
                    if (ar < 0) { ExceptionTable.Syscall(__NR_close, fd); fd = ar; }
                }
                if (fd >= 0) { _fds[Str(a, "fd")!] = fd; _uffdFeatures[Str(a, "fd")!] = (ulong)Num(a, "features"); }
                Ret(r, fd);
                break;
            }
            case "uffdio_register":
            {
                var m = _maps[Str(a, "map")!];
                long off = Num(a, "offset"), len = Num(a, "length");
                if (len < 0) len = m.Len - off;
                ulong* reg = stackalloc ulong[4];
                reg[0] = m.Base + (ulong)off; reg[1] = (ulong)len; reg[2] = (ulong)Num(a, "mode"); reg[3] = 0;
                long res = ExceptionTable.Syscall(__NR_ioctl, _fds[Str(a, "uffd")!], UFFDIO_REGISTER, (long)reg);
                if (res == 0) { _uffdMaps.Add(Str(a, "map")!); _uffdRegistered.Add(Str(a, "uffd")!); }
                Ret(r, res);
                break;
            }
            case "uffdio_copy":
            case "uffdio_poison":
            {
                var m = _maps[Str(a, "map")!];
                long off = Num(a, "offset"), len = Num(a, "length");
                if (len < 0) len = m.Len - off;
                long res;
                if (op == "uffdio_copy")
                {
                    byte* src = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)len);
                    FillPattern(a, src, len, off);
                    ulong* cp = stackalloc ulong[5];
                    cp[0] = m.Base + (ulong)off; cp[1] = (ulong)src; cp[2] = (ulong)len; cp[3] = 0; cp[4] = 0;
                    res = ExceptionTable.Syscall(__NR_ioctl, _fds[Str(a, "uffd")!], UFFDIO_COPY, (long)cp);
                    if (res == 0) res = (long)cp[4];
                    System.Runtime.InteropServices.NativeMemory.Free(src);
                }
                else
                {
                    ulong* po = stackalloc ulong[4];
                    po[0] = m.Base + (ulong)off; po[1] = (ulong)len; po[2] = 0; po[3] = 0;
                    res = ExceptionTable.Syscall(__NR_ioctl, _fds[Str(a, "uffd")!], UFFDIO_POISON, (long)po);
                    if (res == 0) res = (long)po[3];
                }
                Ret(r, res);
                ResumeBlocked(r);
                break;
            }
            case "check": break;
            default: if (!ExecMoreOp(op, a, r)) r.Str("error", "unsupported op " + op); break;
        }
    }

    private sealed class AccessState
    {
        public long Done;
        public bool Finished;
    }

    /// <summary>CPU loads/stores of name+offset, length bytes, through copy_mc (rep movsb with a fixup).</summary>
    private void Access(bool write, JsonElement a, JsonLine r)
    {
        string map = Str(a, "map")!;
        var m = _maps[map];
        long off = Num(a, "offset"), len = Num(a, "length");
        byte* va = (byte*)(m.Base + (ulong)off);
        long count0 = ExceptionTable.Count;
        var st = new AccessState();
        byte* buf = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)Math.Min(len, 1 << 20));
        void Body()
        {
            const long chunk = 1 << 20;
            for (long done = 0; done < len; done += chunk)
            {
                long n = Math.Min(chunk, len - done);
                long left;
                if (write) { FillPattern(a, buf, n, off + done); left = ExceptionTable.CopyMc(va + done, buf, n); }
                else
                {
                    left = ExceptionTable.CopyMc(buf, va + done, n);
                    CheckChunk(a, buf, n - left, off, done);
                }
                st.Done = done + n - left;
                if (left != 0) break;
            }
            st.Finished = true;
        }
        _check = default;
        if (_uffdMaps.Contains(map))
        {
            long tid = 0;
            var t = new Thread(() => { Volatile.Write(ref tid, ExceptionTable.Syscall(186 /*gettid*/)); Body(); }) { IsBackground = true };
            t.Start();
            if (!t.Join(500) && WaitsInKernel(t, () => Volatile.Read(ref tid)))
            { _blocked.Add(t); r.Str("outcome", "blocked in userfaultfd").Num("done", 0); return; }
        }
        else Body();
        System.Runtime.InteropServices.NativeMemory.Free(buf);
        string outcome = "ok";
        if (st.Done < len)
        {
            Collect();
            var sig = ExceptionTable.Count > count0 && _pending.Count > 0 ? _pending[^1] : (SignalRecord?)null;
            outcome = sig is { } s ? "SIGBUS " + BusCodeName(s.Code) : "fault";
        }
        r.Str("outcome", outcome).Num("done", st.Done);
        if (!write && _check.Lines > 0 || !write && Has(a, "check")) DataJson(r);
    }

    // ------------------------------------------------------------------ data patterns

    private (long Lines, long Mismatches, long First) _check;

    /// <summary>The model's ContentTag.PatternByte (the same source file is compiled into the runner).</summary>
    internal static byte PatternByte(ulong seed, long o) => HugeFault.Mm.ContentTag.PatternByte(seed, o);

    /// <summary>Fills buf with the step's pattern (seed, at) for mapping offset off (zeros for "zero").</summary>
    private static void FillPattern(JsonElement a, byte* buf, long n, long off)
    {
        var span = new Span<byte>(buf, (int)n);
        if (!a.TryGetProperty("pattern", out var p) || p.GetProperty("zero").GetBoolean()) { span.Clear(); return; }
        ulong seed = p.GetProperty("seed").GetUInt64();
        long po = p.TryGetProperty("at", out var at) && at.ValueKind == JsonValueKind.Number ? at.GetInt64() + (off - Num(a, "offset")) : off;
        for (int i = 0; i < n; i++) span[i] = PatternByte(seed, po + i);
    }

    /// <summary>Compares bytes [0,n) read at buffer offset bufOff of the whole access with the expected data, per cacheline.</summary>
    private void CheckChunk(JsonElement a, byte* buf, long n, long firstOffset, long bufOff)
    {
        if (!a.TryGetProperty("check", out var c)) return;
        bool zero = c.GetProperty("zero").GetBoolean();
        ulong seed = zero ? 0 : c.GetProperty("seed").GetUInt64();
        long po = c.TryGetProperty("at", out var at) && at.ValueKind == JsonValueKind.Number ? at.GetInt64() : firstOffset;
        for (long line = 0; line < n; line += 64)
        {
            long end = Math.Min(n, line + 64);
            bool bad = false;
            for (long i = line; i < end && !bad; i++)
                bad = buf[i] != (zero ? 0 : PatternByte(seed, po + bufOff + i));
            _check.Lines++;
            if (bad) { if (_check.Mismatches == 0) _check.First = bufOff + line; _check.Mismatches++; }
        }
    }

    private void DataCheck(JsonElement a, JsonLine r, byte* buf, long n, long pos)
    {
        if (!a.TryGetProperty("check", out _)) return;
        _check = default;
        CheckChunk(a, buf, n, pos, 0);
        DataJson(r);
    }

    private void DataJson(JsonLine r) =>
        r.Raw("data", new JsonLine().Num("lines", _check.Lines).Num("mismatches", _check.Mismatches).Num("first", _check.First).ToString());

    // ------------------------------------------------------------------ signals, counters, log

    private void Collect() => _pending.AddRange(ExceptionTable.Drain());

    private string SignalsJson()
    {
        AwaitPendingSigbus();
        Collect();
        var sb = new StringBuilder("[");
        foreach (var s in _pending)
        {
            var o = new JsonLine().Str("to", _tidNames.TryGetValue(s.Tid, out var tn) ? tn : _me).Str("signo", s.Signo == SIGBUS ? "SIGBUS" : "SIG" + s.Signo)
                .Str("si_code", s.Signo == SIGBUS ? BusCodeName(s.Code) : "code" + s.Code).Str("si_addr", Sym(s.Addr))
                .Num("si_addr_lsb", s.AddrLsb).Str("site", s.ActionName);
            if (sb.Length > 1) sb.Append(',');
            sb.Append(o);
        }
        _pending.Clear();
        return sb.Append(']').ToString();
    }

    private string Sym(ulong addr)
    {
        for (int i = _mapOrder.Count - 1; i >= 0; i--)
            if (_maps.TryGetValue(_mapOrder[i], out var m) && addr >= m.Base && addr < m.Base + (ulong)m.Len)
                return addr == m.Base ? _mapOrder[i] : $"{_mapOrder[i]}+0x{addr - m.Base:x}";
        return $"0x{addr:x}";
    }

    private string Counters()
    {
        var mi = Meminfo.Parse(ReadText("/proc/meminfo") ?? "");
        var l = new JsonLine().Num("HugePages_Total", mi.Total).Num("HugePages_Free", mi.Free).Num("HugePages_Rsvd", mi.Rsvd)
            .Num("HugePages_Surp", mi.Surp).Num("HardwareCorrupted", mi.HardwareCorruptedKb);
        foreach (var (size, kb) in new[] { ("2M", 2048), ("1G", 1048576) })
        {
            string dir = $"/sys/kernel/mm/hugepages/hugepages-{kb}kB/";
            long R(string f) => long.TryParse((ReadText(dir + f) ?? "").Trim(), out long v) ? v : -1;
            l.Raw(size, new JsonLine().Num("total", R("nr_hugepages")).Num("free", R("free_hugepages"))
                .Num("resv", R("resv_hugepages")).Num("surp", R("surplus_hugepages")).ToString());
        }
        return l.ToString();
    }

    private string Kmsg()
    {
        var sb = new StringBuilder("[");
        if (_kmsg >= 0)
        {
            byte* buf = stackalloc byte[8192];
            long r;
            while ((r = ExceptionTable.Syscall(__NR_read, _kmsg, (long)buf, 8192)) > 0 || r == -32)
            {
                if (r < 0) continue;
                string rec = Encoding.UTF8.GetString(buf, (int)r);
                int semi = rec.IndexOf(';');
                if (sb.Length > 1) sb.Append(',');
                JsonLine.AppendString(sb, rec[(semi + 1)..].Split('\n')[0]);
            }
        }
        return sb.Append(']').ToString();
    }

    // ------------------------------------------------------------------ helpers

    private ulong PfnArg(JsonElement a)
    {
        if (Str(a, "var") is { } v) return _vars.TryGetValue(v, out var mine) ? mine : _knownVars.GetValueOrDefault(v);
        if (Str(a, "map") is { } mn) { var m = _maps[mn]; return Pagemap(m.Base + (ulong)Num(a, "offset")); }
        return (ulong)Num(a, "pfn");
    }

    private ulong Pagemap(ulong va)
    {
        long fd = OpenPath("/proc/self/pagemap", O_RDONLY);
        ulong e = 0;
        if (fd >= 0) { ExceptionTable.Syscall(__NR_pread64, fd, (long)&e, 8, (long)(va / 4096 * 8)); ExceptionTable.Syscall(__NR_close, fd); }
        return (e >> 63 & 1) != 0 ? e & ((1UL << 55) - 1) : 0;
    }

    private long Fd(JsonElement a) => _fds.TryGetValue(Str(a, "fd") ?? "", out var fd) ? fd : -1;

    private static bool Has(JsonElement a, string k) => a.ValueKind == JsonValueKind.Object && a.TryGetProperty(k, out _);
    private static string? Str(JsonElement a, string k) => a.ValueKind == JsonValueKind.Object && a.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    private static long Num(JsonElement a, string k) => a.ValueKind == JsonValueKind.Object && a.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : 0;
    private static IEnumerable<(string, JsonElement)> Obj(JsonElement a, string k) =>
        a.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.Object ? v.EnumerateObject().Select(p => (p.Name, p.Value)) : [];

    private static void SetComm(string name)
    {
        byte[] b = Encoding.ASCII.GetBytes(name + "\0");
        fixed (byte* p = b) ExceptionTable.Syscall(__NR_prctl, 15 /*PR_SET_NAME*/, (long)p);
    }

    private static long OpenPath(string path, long flags)
    {
        byte[] b = Encoding.ASCII.GetBytes(path + "\0");
        fixed (byte* p = b) return ExceptionTable.Syscall(__NR_open, (long)p, flags | O_CLOEXEC, 0);
    }

    private static string? ReadText(string path)
    {
        long fd = OpenPath(path, O_RDONLY);
        if (fd < 0) return null;
        var sb = new StringBuilder();
        byte* buf = stackalloc byte[4096];
        long r;
        while ((r = ExceptionTable.Syscall(__NR_read, fd, (long)buf, 4096)) > 0) sb.Append(Encoding.ASCII.GetString(buf, (int)r));
        ExceptionTable.Syscall(__NR_close, fd);
        return sb.ToString();
    }

    private static long WriteText(string path, string text)
    {
        long fd = OpenPath(path, O_WRONLY);
        if (fd < 0) return fd;
        byte[] b = Encoding.ASCII.GetBytes(text);
        long r;
        fixed (byte* p = b) r = ExceptionTable.Syscall(__NR_write, fd, (long)p, b.Length);
        ExceptionTable.Syscall(__NR_close, fd);
        return r < 0 ? r : 0;
    }

    private static long ReadFull(long fd, byte* p, long n)
    {
        long got = 0;
        while (got < n)
        {
            long r = ExceptionTable.Syscall(__NR_read, fd, (long)(p + got), n - got);
            if (r == -EINTR) continue;
            if (r <= 0) break;
            got += r;
        }
        return got;
    }

    private static void WriteFull(long fd, byte* p, long n)
    {
        long done = 0;
        while (done < n)
        {
            long r = ExceptionTable.Syscall(__NR_write, fd, (long)(p + done), n - done);
            if (r == -EINTR) continue;
            if (r <= 0) return;
            done += r;
        }
    }

    private void Out(JsonLine l) => Probe.WriteOut(l.Str("scenario", _name).Str("proc", _me).ToString() + "\n");
}

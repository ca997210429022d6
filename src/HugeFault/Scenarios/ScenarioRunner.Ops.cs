using HugeFault.Mm;

namespace HugeFault.Scenarios;

// The process, file and memory operations of a scenario, each from its typed record (StepOps.cs).
public sealed partial class ScenarioRunner
{
    private readonly Dictionary<string, int> _shm = new();
    /// <summary>Scenario thread → the process (thread group leader) it belongs to.</summary>
    private readonly Dictionary<string, string> _leader = new();

    /// <summary>The thread group an fd belongs to: a process and its threads share one file table.</summary>
    private IEnumerable<string> Group(string who)
    {
        string lead = _leader.GetValueOrDefault(who, who);
        yield return lead;
        foreach (var (t, l) in _leader) if (l == lead) yield return t;
    }

    /// <summary>Names the fd the step created for every task of the step's thread group.</summary>
    private void SetFd(Step s, string name, int fd)
    {
        foreach (var n in Group(s.As!)) _fds[(n, name)] = fd;
    }

    private string MemfdCreate(Step s, MemfdCreateOp o)
    {
        var r = _k.MemfdCreate(Proc(s), o.Name, (uint)o.Flags.Bits);
        if (!r.Failed) SetFd(s, o.Fd, (int)r.Ret);
        return Sys(s, "memfd_create", $"\"{o.Name}\", {o.Flags.Text}", r);
    }

    private string Open(Step s, OpenOp o)
    {
        var r = _k.OpenFile(Proc(s), o.Path, o.Create);
        if (!r.Failed) SetFd(s, o.Fd, (int)r.Ret);
        return Sys(s, "open", $"\"{o.Path}\", O_RDWR|O_CREAT", r);
    }

    private string Read(Step s, string fdName, SizeArg length, SizeArg? offset)
    {
        var t = Proc(s); int fd = Fd(s, fdName);
        long pos = offset is { } off ? (long)off.Value : (t.Fds.TryGetValue(fd, out var of) ? of.Pos : 0);
        var check = ExpectedCheck(s, pos);
        var r = offset is { } o ? _k.Pread(t, fd, length.Value, o.Value, check) : _k.Read(t, fd, length.Value, check);
        _lastCheck = check;
        return Sys(s, s.Op, offset is { } p ? $"{fdName}, buf, {length.Text}, {p.Text}" : $"{fdName}, buf, {length.Text}", r);
    }

    private string ReadLoop(Step s, ReadLoopOp o)
    {
        var t = Proc(s); int fd = Fd(s, o.Fd);
        long start = t.Fds.TryGetValue(fd, out var of0) ? of0.Pos : 0;
        var check = ExpectedCheck(s, start);
        long total = 0; SysResult r; int calls = 0;
        do { r = _k.Read(t, fd, o.Chunk.Value, check is null ? null : new ContentCheck(check.Seed, check.PatternOffset + total)); calls++; if (!r.Failed) total += r.Ret; }
        while (!r.Failed && r.Ret > 0 && calls < 1_000_000);
        _lastCheck = check is null ? null : VerifyRange(t, fd, start, total, check);
        var fin = r.Failed ? new SysResult(total, r.Errno) : SysResult.Ok(total);
        return Sys(s, "read_loop", $"{o.Fd}, chunk {o.Chunk.Text}: {calls} reads, last = {(r.Failed ? "-1 " + Errno.Name(r.Errno) : r.Ret.ToString())}", fin);
    }

    /// <summary>Re-reads what a read loop returned, to compare it with the expected data in one pass.</summary>
    private ContentCheck VerifyRange(TaskStruct t, int fd, long start, long total, ContentCheck check)
    {
        var c = new ContentCheck(check.Seed, check.PatternOffset);
        if (total > 0) _k.PeekFile(t.Fds[fd].Inode, (ulong)start, (ulong)total, c);
        return c;
    }

    private string Mmap(Step s, MmapOp o)
    {
        int fd = o.Fd is { } f ? Fd(s, f) : -1;
        var r = _k.Mmap(Proc(s), o.Length.Value, (int)o.Prot.Bits, (int)o.Flags.Bits, fd, o.Offset.Value, o.Name);
        if (!r.Failed) _maps[o.Name] = ((ulong)r.Ret, Proc(s).Mm.FindVma((ulong)r.Ret)?.Length ?? o.Length.Value);
        return Sys(s, "mmap", $"NULL, {o.Length.Text}, {o.Prot.Text}, {o.Flags.Text}, {o.Fd ?? "-1"}, {o.Offset.Text} -> {o.Name}", r);
    }

    private string Munmap(Step s, MunmapOp o)
    {
        var (va, len) = Map(o.At.Map);
        ulong l = LengthOr(o.At, len);
        return Sys(s, "munmap", $"{Addr(o.At)}, {Units.Size(l)}", _k.Munmap(Proc(s), va + o.At.Offset.Value, l));
    }

    private string Madvise(Step s, MadviseOp o)
    {
        var (va, _) = Map(o.At.Map);
        ulong len = o.At.Length?.Value ?? Units.PAGE_SIZE;
        return Sys(s, "madvise", $"{Addr(o.At)}, {Units.Size(len)}, {o.AdviceText}", _k.Madvise(Proc(s), va + o.At.Offset.Value, len, o.Advice));
    }

    private string Fork(Step s, ForkOp o)
    {
        var child = _k.Fork(Proc(s), o.Child);
        _procs[o.Child] = child;
        foreach (var kv in _fds.Where(kv => kv.Key.Proc == s.As).ToList()) _fds[(o.Child, kv.Key.Fd)] = kv.Value;
        return Sys(s, "fork", "", SysResult.Ok(child.Pid));
    }

    private string Exit(Step s)
    {
        _k.DoExit(Proc(s), "exit()");
        return Sys(s, "exit", "0", SysResult.Ok());
    }

    private string Thread(Step s, ThreadOp o)
    {
        var th = _k.CloneThread(Proc(s), o.Name);
        _procs[o.Name] = th;
        _leader[o.Name] = _leader.GetValueOrDefault(s.As!, s.As!);
        foreach (var kv in _fds.Where(kv => kv.Key.Proc == s.As).ToList()) _fds[(o.Name, kv.Key.Fd)] = kv.Value;
        return Sys(s, "clone", "CLONE_VM|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD", SysResult.Ok(th.Pid));
    }

    private string Sysctl(Step s, SysctlOp o)
    {
        long v = o.Value;
        switch (o.Name)
        {
            case "vm.memory_failure_early_kill": _k.EarlyKill = v != 0; break;
            case "vm.memory_failure_recovery": _k.Recovery = v != 0; break;
            case "vm.nr_hugepages": _k.SetNrHugepages(_k.H2M, v); break;
            case "vm.nr_overcommit_hugepages": _k.H2M.nr_overcommit_huge_pages = v; break;
            case "vm.enable_soft_offline":
                if (!_k.HasEnableSoftOfflineSysctl) return Sys(s, "open", "/proc/sys/vm/enable_soft_offline", SysResult.Err(Errno.ENOENT));
                _k.EnableSoftOffline = v != 0; break;
        }
        return Sys(s, "write", $"/proc/sys/{o.Name.Replace('.', '/')}, {v}", SysResult.Ok());
    }

    private string NrHugepages(Step s, NrHugepagesOp o)
    {
        var h = o.Size == "1G" ? _k.H1G : _k.H2M;
        _k.SetNrHugepages(h, o.Value);
        return Sys(s, "write", $"/sys/kernel/mm/hugepages/hugepages-{h.Size >> 10}kB/nr_hugepages, {o.Value}", SysResult.Ok());
    }

    private string Access(Step s, MapRange at, bool write, Pattern pat)
    {
        var t = Proc(s);
        var (va, _) = Map(at.Map);
        ulong off = at.Offset.Value;
        ulong len = at.Length?.Value ?? 1;
        long po = pat.At ?? (long)off;
        ContentCheck? check = write ? null : ExpectedCheck(s, (long)off);
        var r = _k.Access(t, va + off, len, write, pat.Seed, po, check);
        _lastCheck = check; _lastAccess = r;
        if (r.Blocked) _blocked.Add((t, va + off + r.Done, len - r.Done, write, pat.Seed, po + (long)r.Done, r.Done));
        _k.Emit(new AccessEvent(_k.NowNs, t.Comm, s.Op, _k.Sym(t, va + off), len, r.Done, r.Outcome));
        return $"{s.Op} {Units.Size(len)} at {Addr(at)}: {r.Outcome}" + (r.Done != len ? $" after {r.Done} bytes" : "");
    }

    private string Userfaultfd(Step s, UserfaultfdOp o)
    {
        var r = _k.UserfaultfdCreate(Proc(s), (ulong)o.Features.Bits);
        if (!r.Failed) SetFd(s, o.Fd, (int)r.Ret);
        return Sys(s, "userfaultfd", o.Features.Text, r);
    }

    private string UffdioRegister(Step s, UffdioRegisterOp o)
    {
        var (va, len) = Map(o.At.Map);
        ulong l = LengthOr(o.At, len);
        return Sys(s, "ioctl", $"{o.Uffd}, UFFDIO_REGISTER, {Addr(o.At)}, {Units.Size(l)}", _k.UffdioRegister(Proc(s), Fd(s, o.Uffd), va + o.At.Offset.Value, l, o.Mode));
    }

    /// <summary>A resolving userfaultfd ioctl on a range (the rest of the mapping by default); blocked accesses retry after it.</summary>
    private string UffdIoctl(Step s, string uffd, MapRange at, string op, Func<ulong, ulong, SysResult> ioctl)
    {
        var (va, len) = Map(at.Map);
        ulong l = LengthOr(at, len);
        var r = ioctl(va + at.Offset.Value, l);
        string sum = Sys(s, "ioctl", $"{uffd}, {op.ToUpperInvariant()}, {Addr(at)}, {Units.Size(l)}", r);
        ResumeBlocked();
        return sum;
    }

    /// <summary>Accesses that waited in handle_userfault() retry after a resolving ioctl.</summary>
    private void ResumeBlocked()
    {
        var list = _blocked.ToList(); _blocked.Clear();
        foreach (var b in list)
        {
            var r = _k.Access(b.T, b.Va, b.Len, b.Write, b.Seed, b.Po);
            if (r.Blocked) _blocked.Add((b.T, b.Va + r.Done, b.Len - r.Done, b.Write, b.Seed, b.Po + (long)r.Done, b.Done + r.Done));
            _k.Emit(new AccessEvent(_k.NowNs, b.T.Comm, b.Write ? "store (resumed)" : "load (resumed)", _k.Sym(b.T, b.Va), b.Len, r.Done, r.Outcome));
        }
    }

    private string Shmget(Step s, ShmgetOp o)
    {
        var r = _k.Shmget(Proc(s), o.Size.Value, (int)o.Flags.Bits);
        if (!r.Failed) _shm[o.Shm] = (int)r.Ret;
        return Sys(s, "shmget", $"IPC_PRIVATE, {o.Size.Text}, IPC_CREAT{(o.Flags.Text.Length > 0 ? "|" + o.Flags.Text : "")}", r);
    }

    private string Shmat(Step s, ShmatOp o)
    {
        var r = _k.Shmat(Proc(s), _shm.GetValueOrDefault(o.Shm, -1), o.Name);
        if (!r.Failed) _maps[o.Name] = ((ulong)r.Ret, Proc(s).Mm.FindVma((ulong)r.Ret)?.Length ?? 0);
        return Sys(s, "shmat", $"{o.Shm}, NULL, 0 -> {o.Name}", r);
    }
}

using HugeFault.Mm;

namespace HugeFault.Scenarios;

// Operations of the peer-suite ports: threads, UFFDIO_CONTINUE/WRITEPROTECT, SysV SHM_HUGETLB segments.
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
    private void SetFd(Step s, int fd)
    {
        foreach (var n in Group(s.As!)) _fds[(n, A(s, "fd"))] = fd;
    }

    private string? ExecMore(Step s)
    {
        switch (s.Op)
        {
            case "thread":
            {
                var t = Proc(s);
                var th = _k.CloneThread(t, A(s, "name"));
                _procs[A(s, "name")] = th;
                _leader[A(s, "name")] = _leader.GetValueOrDefault(s.As!, s.As!);
                foreach (var kv in _fds.Where(kv => kv.Key.Proc == s.As).ToList()) _fds[(A(s, "name"), kv.Key.Fd)] = kv.Value;
                return Sys(s, "clone", "CLONE_VM|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD", SysResult.Ok(th.Pid));
            }
            case "uffdio_continue":
            case "uffdio_writeprotect":
            {
                var (va, len) = Map(s);
                ulong off = Size(s, "offset"); ulong l = Has(s, "length") ? Size(s, "length") : len - off;
                var r = s.Op == "uffdio_continue" ? _k.UffdioContinue(Proc(s), Fd(s, "uffd"), va + off, l)
                    : _k.UffdioWriteprotect(Proc(s), Fd(s, "uffd"), va + off, l, !Has(s, "protect") || A(s, "protect") == "true");
                string sum = Sys(s, "ioctl", $"{A(s, "uffd")}, {s.Op.ToUpperInvariant()}, {Addr(s)}, {Units.Size(l)}", r);
                ResumeBlocked();
                return sum;
            }
            case "shmget":
            {
                int fl = Flags(s, "flags", v => v switch { "SHM_HUGETLB" => Kernel.SHM_HUGETLB, "SHM_HUGE_2MB" => 21 << 26, "SHM_HUGE_1GB" => 30 << 26, _ => 0 });
                var r = _k.Shmget(Proc(s), Size(s, "size"), fl);
                if (!r.Failed) _shm[A(s, "shm")] = (int)r.Ret;
                return Sys(s, "shmget", $"IPC_PRIVATE, {A(s, "size")}, IPC_CREAT{(Has(s, "flags") ? "|" + A(s, "flags") : "")}", r);
            }
            case "shmat":
            {
                var r = _k.Shmat(Proc(s), _shm.GetValueOrDefault(A(s, "shm"), -1), A(s, "name"));
                if (!r.Failed) _maps[A(s, "name")] = ((ulong)r.Ret, Proc(s).Mm.FindVma((ulong)r.Ret)?.Length ?? 0);
                return Sys(s, "shmat", $"{A(s, "shm")}, NULL, 0 -> {A(s, "name")}", r);
            }
            case "shmdt": return Sys(s, "shmdt", A(s, "map"), _k.Shmdt(Proc(s), Map(s).Va));
            case "shm_rmid": return Sys(s, "shmctl", $"{A(s, "shm")}, IPC_RMID", _k.ShmctlRmid(_shm.GetValueOrDefault(A(s, "shm"), -1)));
            default: return null;
        }
    }
}

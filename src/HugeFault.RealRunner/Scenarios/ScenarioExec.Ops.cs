using System.Text;
using System.Text.Json;
using HugeFault.RealRunner.Native;
using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Scenarios;

// Operations added for the peer-suite ports: threads, UFFDIO_CONTINUE/WRITEPROTECT, SysV SHM_HUGETLB, hugetlbfs paths.
internal sealed unsafe partial class ScenarioExec
{
    /// <summary>SysV segments by scenario name (shmid).</summary>
    private readonly Dictionary<string, long> _shm = new();
    /// <summary>Features each userfaultfd was opened with, by fd name.</summary>
    private readonly Dictionary<string, ulong> _uffdFeatures = new();
    private const ulong UFFD_FEATURE_EVENT_FORK = 1 << 1;
    /// <summary>userfaultfds with a registered range (only those produce a fork event).</summary>
    private readonly HashSet<string> _uffdRegistered = new();

    /// <summary>
    /// One thread per UFFD_FEATURE_EVENT_FORK userfaultfd that reads one message (32-byte struct uffd_msg): fork() blocks
    /// in dup_fctx() until the UFFD_EVENT_FORK message is read, as the selftests' event threads do. The child's new uffd
    /// (msg.arg.fork.ufd) stays open in the parent.
    /// </summary>
    private List<Thread> ForkEventReaders()
    {
        var list = new List<Thread>();
        foreach (var (name, feat) in _uffdFeatures)
        {
            if ((feat & UFFD_FEATURE_EVENT_FORK) == 0 || !_uffdRegistered.Contains(name) || !_fds.TryGetValue(name, out long fd)) continue;
            var t = new Thread(() => { byte* msg = stackalloc byte[32]; ExceptionTable.Syscall(__NR_read, fd, (long)msg, 32); }) { IsBackground = true };
            t.Start();
            list.Add(t);
        }
        return list;
    }

    private bool ExecMoreOp(string op, JsonElement a, JsonLine r)
    {
        switch (op)
        {
            case "thread": r.Num("ret", StartThread(Str(a, "name")!)); return true;
            case "uffdio_continue":
            {
                var (start, len) = Range(a);
                ulong* c = stackalloc ulong[4];
                c[0] = start; c[1] = (ulong)len; c[2] = 0; c[3] = 0;
                long res = ExceptionTable.Syscall(__NR_ioctl, _fds[Str(a, "uffd")!], UFFDIO_CONTINUE, (long)c);
                Ret(r, res == 0 ? (long)c[3] : res);
                ResumeBlocked(r);
                return true;
            }
            case "uffdio_writeprotect":
            {
                var (start, len) = Range(a);
                ulong* w = stackalloc ulong[3];
                w[0] = start; w[1] = (ulong)len; w[2] = (ulong)Num(a, "mode");
                Ret(r, ExceptionTable.Syscall(__NR_ioctl, _fds[Str(a, "uffd")!], UFFDIO_WRITEPROTECT, (long)w));
                ResumeBlocked(r);
                return true;
            }
            case "shmget":
            {
                long id = ExceptionTable.Syscall(__NR_shmget, 0 /*IPC_PRIVATE*/, Num(a, "size"), Num(a, "flags") | IPC_CREAT | 0600);
                if (id >= 0) _shm[Str(a, "shm")!] = id;
                Ret(r, id);
                return true;
            }
            case "shmat":
            {
                long id = _shm.TryGetValue(Str(a, "shm")!, out var v) ? v : -1;
                long addr = ExceptionTable.Syscall(__NR_shmat, id, 0, 0);
                if (addr >= 0 || addr <= -4096)
                {
                    // the segment's size comes from the plan; the mapping is named like an mmap
                    _maps[Str(a, "name")!] = ((ulong)addr, Num(a, "size"));
                    _mapOrder.Add(Str(a, "name")!);
                }
                Ret(r, addr);
                return true;
            }
            case "shmdt":
            {
                string n = Str(a, "map")!;
                long res = ExceptionTable.Syscall(__NR_shmdt, (long)_maps[n].Base);
                if (res == 0) { _maps.Remove(n); _mapOrder.Remove(n); }
                Ret(r, res);
                return true;
            }
            case "shm_rmid":
                Ret(r, ExceptionTable.Syscall(__NR_shmctl, _shm.TryGetValue(Str(a, "shm")!, out var sid) ? sid : -1, IPC_RMID, 0));
                return true;
            case "open":
            {
                byte[] p = Encoding.ASCII.GetBytes(Str(a, "path") + "\0");
                long fd;
                fixed (byte* pp = p) fd = ExceptionTable.Syscall(__NR_open, (long)pp, O_RDWR | (Num(a, "create") != 0 ? O_CREAT : 0), 0600);
                if (fd >= 0) _fds[Str(a, "fd")!] = fd;
                Ret(r, fd);
                return true;
            }
            case "unlink":
            {
                byte[] p = Encoding.ASCII.GetBytes(Str(a, "path") + "\0");
                fixed (byte* pp = p) Ret(r, ExceptionTable.Syscall(__NR_unlink, (long)pp));
                return true;
            }
            default: return false;
        }
    }

    private (ulong Start, long Len) Range(JsonElement a)
    {
        var m = _maps[Str(a, "map")!];
        long off = Num(a, "offset"), len = Num(a, "length");
        if (len < 0) len = m.Len - off;
        return (m.Base + (ulong)off, len);
    }

    /// <summary>
    /// Whether an access thread that has not finished is waiting in the kernel (handle_userfault() sleeps: state S or D
    /// in /proc/self/task/TID/stat) rather than still copying (state R, slow under TCG): polled until it either finishes
    /// or is seen asleep twice in a row, 60 s at most.
    /// </summary>
    private static bool WaitsInKernel(Thread t, Func<long> tid)
    {
        int asleep = 0;
        for (int waited = 0; waited < 60_000; waited += 100)
        {
            string? st = tid() is > 0 and var id ? ReadText($"/proc/self/task/{id}/stat") : null;
            char state = st is null ? '?' : st[st.LastIndexOf(')') + 2];
            asleep = state is 'S' or 'D' ? asleep + 1 : 0;
            if (asleep >= 2) return true;
            if (t.Join(100)) return false;
        }
        return true;
    }

    /// <summary>Accesses blocked in handle_userfault() retry after a resolving ioctl; their signals belong to that step.</summary>
    private void ResumeBlocked(JsonLine r)
    {
        foreach (var t in _blocked.ToList()) if (t.Join(5000)) _blocked.Remove(t);
        r.Num("still_blocked", _blocked.Count);
    }
}

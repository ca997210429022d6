using System.Runtime.InteropServices;
using System.Text;
using HugeFault.Recovery.Kernel;
using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Tests;

/// <summary>
/// A kernel for the agent's unit tests: hugetlbfs files whose poisoned raw pages read EIO exactly as
/// hugetlbfs_read_iter() + adjust_range_hwpoison() do (short read up to the first poisoned 4 KiB, -EIO when the
/// read starts on one), memfds, mappings over real memory (a pread into a mapping makes its pages present;
/// MADV_DONTNEED zaps them; UFFDIO_POISON refuses a present page with EEXIST as mfill_atomic_pte_poison() does),
/// mremap that moves content and poison markers, userfaultfd, and a /proc with other processes. The native
/// agent reaches it through <see cref="NativeSyscall"/>. One fake at a time (<see cref="Current"/>).
/// </summary>
internal sealed unsafe partial class FakeKernel : IKernel, IDisposable
{
    public static FakeKernel? Current;

    public string Release = "6.12.117+deb12-amd64";
    public ulong UffdFeatures = UFFD_FEATURE_POISON | (1UL << 4) | 0x3ff;
    public long UserfaultfdErr;
    public bool MemoryFailure = true;
    public string ShmemEnabled = "always within_size advise [never] deny force";
    public Func<string, long?>? Fail;
    public int PreadDelayMs;
    public readonly List<string> Calls = [];
    public readonly List<string> Errors = [];
    public readonly Dictionary<int, FakeProc> Procs = [];
    public readonly int Pid = Environment.ProcessId;

    private readonly Dictionary<int, Open> _fds = [];
    private readonly List<Mapping> _maps = [];
    private readonly List<nint> _allocs = [];
    private int _nextFd = 100;
    private ulong _nextIno = 5000;
    private readonly object _lock = new();

    public FakeKernel() { Current = this; }

    public void Dispose()
    {
        if (Current == this) Current = null;
    }

    // ---- the world, as a test sets it up ----

    public sealed class VFile
    {
        public string Kind = "";          // hugetlb, memfd, uffd
        public ulong Dev = 0x0e, Ino;
        public long BlockSize = 2 << 20;
        public byte* Data;
        public long Size;
        public readonly HashSet<long> Poisoned = [];   // 4 KiB page indices in the file
        public int AccMode = O_RDWR;
        public string Name = "";
    }

    public sealed class FakeProc
    {
        public string? Maps;
        public long MapsErr;
        public List<(string Name, ulong Dev, ulong Ino)> Fds = [];
        public long FdErr;
        public string Comm = "other";
    }

    private sealed class Open
    {
        public VFile? File;
        public string? Text;
        public List<string>? Dir;
        public int DirPid;
        public long Pos;
        public int Flags;
    }

    public sealed class Mapping
    {
        public ulong Start, Len;
        public string Kind = "anon";     // anon, hugetlb, memfd
        public VFile? File;
        public ulong Off;
        public int Prot;
        public bool Shared, Registered;
        public readonly HashSet<ulong> Present = [], Markers = [];
        public ulong End => Start + Len;
    }

    public IReadOnlyList<Mapping> Maps { get { lock (_lock) return _maps.ToList(); } }

    /// <summary>A hugetlbfs file of <paramref name="size"/> bytes filled with <paramref name="pattern"/>(offset).</summary>
    public int CreateHugetlbFile(long size, long pageSize, Func<long, byte> pattern, string name = "store")
    {
        var f = new VFile { Kind = "hugetlb", Ino = _nextIno++, BlockSize = pageSize, Size = size, Name = name, Data = Alloc((ulong)size) };
        for (long i = 0; i < size; i++) f.Data[i] = pattern(i);
        return AddFd(new Open { File = f, Flags = O_RDWR });
    }

    public VFile FileOf(int fd) => _fds[fd].File!;

    /// <summary>A MAP_SHARED mapping of the whole file in real memory holding the file's data.</summary>
    public nint MapHugetlb(int fd, int prot = PROT_READ | PROT_WRITE, bool shared = true)
    {
        var f = FileOf(fd);
        byte* p = Alloc((ulong)f.Size + (ulong)f.BlockSize);
        ulong start = ((ulong)p + (ulong)f.BlockSize - 1) & ~((ulong)f.BlockSize - 1);
        Buffer.MemoryCopy(f.Data, (void*)start, f.Size, f.Size);
        lock (_lock) Insert(new Mapping { Start = start, Len = (ulong)f.Size, Kind = "hugetlb", File = f, Prot = prot, Shared = shared });
        return (nint)start;
    }

    public string SelfMaps()
    {
        var sb = new StringBuilder();
        lock (_lock)
            foreach (var m in _maps.OrderBy(m => m.Start))
            {
                string perms = $"{((m.Prot & PROT_READ) != 0 ? 'r' : '-')}{((m.Prot & PROT_WRITE) != 0 ? 'w' : '-')}{((m.Prot & PROT_EXEC) != 0 ? 'x' : '-')}{(m.Shared ? 's' : 'p')}";
                var (dev, ino, path) = m.File is { } f ? (f.Dev, f.Ino, f.Kind == "hugetlb" ? $"/memfd:{f.Name} (deleted)" : "/memfd:hugefault-recovery (deleted)") : (0UL, 0UL, "");
                sb.Append($"{m.Start:x8}-{m.End:x8} {perms} {m.Off:x8} {dev >> 8:x2}:{dev & 0xff:x2} {ino}   {path}\n");
            }
        return sb.ToString();
    }

    // ---- IKernel ----

    public nint NativeSyscall => (nint)(delegate* unmanaged<long, long, long, long, long, long, long, long>)&Trampoline;

    [UnmanagedCallersOnly]
    private static long Trampoline(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
        => Current?.Syscall(nr, a1, a2, a3, a4, a5, a6) ?? -ENOSYS;

    public long Syscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0)
    {
        try
        {
            lock (_lock) return Dispatch(nr, a1, a2, a3, a4, a5, a6);
        }
        catch (Exception e)
        {
            // never unwind into the native agent
            lock (Errors) Errors.Add($"syscall {nr}: {e}");
            return -EFAULT;
        }
    }

    private long Log(string call, long? fail = null)
    {
        Calls.Add(call);
        return Fail?.Invoke(call.Split(' ')[0]) ?? fail ?? 0;
    }

    private long Dispatch(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
    {
        long f;
        switch (nr)
        {
            case __NR_uname:
                Encoding.ASCII.GetBytes(Release + "\0").CopyTo(new Span<byte>((byte*)a1 + 130, 65));
                return 0;
            case __NR_openat: return OpenAt(Str(a2), (int)a3);
            case __NR_read: return Read((int)a1, (byte*)a2, a3);
            case __NR_close:
                Calls.Add($"close {a1}");
                return _fds.Remove((int)a1) ? 0 : -EBADF;
            case __NR_getdents64: return Getdents((int)a1, (byte*)a2, a3);
            case __NR_newfstatat: return FstatAt((int)a1, Str(a2), (ulong*)a3);
            case __NR_fstatfs:
                if (!_fds.TryGetValue((int)a1, out var sf) || sf.File is null) return -EBADF;
                ((long*)a2)[0] = sf.File.Kind == "hugetlb" ? HUGETLBFS_MAGIC : 0x01021994;
                ((long*)a2)[1] = sf.File.Kind == "hugetlb" ? sf.File.BlockSize : 4096;
                return 0;
            case __NR_fstat:
                if (!_fds.TryGetValue((int)a1, out var so) || so.File is null) return -EBADF;
                ((ulong*)a2)[0] = so.File.Dev; ((ulong*)a2)[1] = so.File.Ino; *(uint*)((byte*)a2 + 24) = 0x81b6;
                return 0;
            case __NR_fcntl:
                if (!_fds.TryGetValue((int)a1, out var fo)) return -EBADF;
                if (a2 == F_GETFL) return fo.Flags;
                if (a2 == F_DUPFD_CLOEXEC) { Calls.Add($"dup {a1}"); return AddFd(new Open { File = fo.File, Flags = fo.Flags }); }
                return -EINVAL;
            case __NR_userfaultfd:
                if ((f = Log($"userfaultfd {a1:x}")) != 0) return f;
                if (UserfaultfdErr != 0) return UserfaultfdErr;
                return AddFd(new Open { File = new VFile { Kind = "uffd" } });
            case __NR_ioctl: return Ioctl((int)a1, a2, (byte*)a3);
            case __NR_mmap: return Mmap((ulong)a1, (ulong)a2, (int)a3, (int)a4, (int)a5, (ulong)a6);
            case __NR_munmap:
                Calls.Add($"munmap {a1:x} {a2:x}");
                Remove((ulong)a1, (ulong)a2);
                return 0;
            case __NR_madvise: return Madvise((ulong)a1, (ulong)a2, (int)a3);
            case __NR_memfd_create:
                if ((f = Log($"memfd_create {Str(a1)}")) != 0) return f;
                return AddFd(new Open { File = new VFile { Kind = "memfd", Ino = _nextIno++, Dev = 0x01 }, Flags = O_RDWR });
            case __NR_ftruncate:
                if ((f = Log($"ftruncate {a1} {a2:x}")) != 0) return f;
                _fds[(int)a1].File!.Size = a2;
                return 0;
            case __NR_pread64: return Pread((int)a1, (byte*)a2, a3, a4);
            case __NR_mremap: return Mremap((ulong)a1, (ulong)a2, (ulong)a3, (int)a4, (ulong)a5);
            case __NR_prctl:
                Calls.Add($"prctl {a1} {a2} {a3}");
                return 0;
            case __NR_setpriority:
                Calls.Add($"setpriority {a1} {a2} {a3}");
                return 0;
            default:
                Calls.Add($"syscall {nr}");
                return -ENOSYS;
        }
    }

    private int AddFd(Open o)
    {
        int fd = _nextFd++;
        _fds[fd] = o;
        return fd;
    }

    private byte* Alloc(ulong len)
    {
        var p = (byte*)NativeMemory.AlignedAlloc((nuint)len, 4096);
        new Span<byte>(p, checked((int)len)).Clear();
        _allocs.Add((nint)p);
        return p;
    }

    private static string Str(long p) => Marshal.PtrToStringUTF8((nint)p) ?? "";
}

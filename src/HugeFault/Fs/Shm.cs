using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault;

// SysV shared memory with SHM_HUGETLB (ipc/shm.c newseg() → hugetlb_file_setup(), shmat() → do_mmap(MAP_SHARED)).
public sealed partial class Kernel
{
    public const int SHM_HUGETLB = 0x800, IPC_CREAT = 0x200;
    private readonly Dictionary<int, Inode> _shmSegments = new();
    private readonly HashSet<int> _shmRemoved = new();
    private int _nextShmId;

    /// <summary>
    /// shmget(IPC_PRIVATE, size, flags): SHM_HUGETLB makes the segment an internal hugetlbfs file of the requested page
    /// size (SHM_HUGE_2MB/1GB, default 2 MiB) whose pages are reserved at once (hugetlb_file_setup() reserves the whole
    /// file, so a shortage fails here with ENOMEM); without it a tmpfs segment. Returns the shmid.
    /// </summary>
    public SysResult Shmget(TaskStruct t, ulong size, int flags)
    {
        if (size == 0) return SysResult.Err(Errno.EINVAL);
        Hstate? h = null;
        if ((flags & SHM_HUGETLB) != 0)
        {
            int shift = (flags >> Memfd.MFD_HUGE_SHIFT) & 0x3f;
            h = shift switch { 0 or 21 => H2M, 30 => H1G, _ => null };
            if (h is null) return SysResult.Err(Errno.EINVAL);
            size = Units.AlignUp(size, h.Size);
        }
        var inode = new Inode(NewIno(), h is null ? FsKind.Tmpfs : FsKind.Hugetlbfs, "SYSV", h) { Internal = true, Unlinked = true, Size = size };
        if (h is not null)
        {
            ulong n = size >> h.Shift;
            if (!HugetlbAcctMemory(h, (long)n)) return SysResult.Err(Errno.ENOMEM);
            for (ulong i = 0; i < n; i++) inode.SharedResv.Add(i);
        }
        AddInode(inode);
        inode.OpenCount++; // the segment holds its file until IPC_RMID and the last detach
        int id = _nextShmId++;
        _shmSegments[id] = inode;
        return SysResult.Ok(id);
    }

    /// <summary>shmat(shmid, NULL, 0): a MAP_SHARED mapping of the whole segment, named like an mmap.</summary>
    public SysResult Shmat(TaskStruct t, int shmid, string name)
    {
        if (!_shmSegments.TryGetValue(shmid, out var inode) || _shmRemoved.Contains(shmid) && inode.IMmap.Count == 0) return SysResult.Err(Errno.EINVAL);
        int fd = AllocFd(t, new OpenFile(inode));
        var r = Mmap(t, inode.Size, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, name);
        t.Fds.Remove(fd); inode.OpenCount--; // shm_file keeps no fd in the task
        return r;
    }

    /// <summary>shmdt(addr): unmaps the attach at addr; a removed segment goes with its last attach.</summary>
    public SysResult Shmdt(TaskStruct t, ulong addr)
    {
        var v = t.Mm.FindVma(addr);
        if (v is null || v.Start != addr || v.File is not { } inode || !_shmSegments.ContainsValue(inode)) return SysResult.Err(Errno.EINVAL);
        var r = Munmap(t, v.Start, v.Length);
        ReleaseShmIfDone(inode);
        return r;
    }

    /// <summary>shmctl(IPC_RMID): the segment is destroyed when nothing is attached (at once, or at the last shmdt).</summary>
    public SysResult ShmctlRmid(int shmid)
    {
        if (!_shmSegments.TryGetValue(shmid, out var inode) || !_shmRemoved.Add(shmid)) return SysResult.Err(Errno.EINVAL);
        ReleaseShmIfDone(inode);
        return SysResult.Ok();
    }

    private void ReleaseShmIfDone(Inode inode)
    {
        var id = _shmSegments.First(kv => kv.Value == inode).Key;
        if (!_shmRemoved.Contains(id) || inode.IMmap.Count > 0 || inode.OpenCount == 0) return;
        inode.OpenCount--;
        EvictInode(inode); // shm_destroy() → fput(): the hugetlbfs inode is evicted, its page cache truncated
        Policy.OnFileReleased(this, inode);
    }
}

using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Tests;

/// <summary>The fake's memory: mappings over real memory, hugetlbfs read with poison, userfaultfd, mremap.</summary>
internal sealed unsafe partial class FakeKernel
{
    /// <summary>Byte the fake writes where a poison marker sits (a real kernel would SIGBUS there).</summary>
    public const byte MarkerFill = 0xEE;

    public Mapping? MappingAt(ulong a)
    {
        lock (_lock) return _maps.FirstOrDefault(m => a >= m.Start && a < m.End);
    }

    private void Insert(Mapping m)
    {
        Remove(m.Start, m.Len);
        _maps.Add(m);
    }

    /// <summary>Unmaps [start, start+len), splitting mappings at the edges.</summary>
    private void Remove(ulong start, ulong len)
    {
        ulong end = start + len;
        foreach (var m in _maps.Where(m => m.Start < end && start < m.End).ToList())
        {
            _maps.Remove(m);
            if (m.Start < start) _maps.Add(Piece(m, m.Start, start));
            if (end < m.End) _maps.Add(Piece(m, end, m.End));
        }
    }

    private static Mapping Piece(Mapping m, ulong s, ulong e)
    {
        var p = new Mapping { Start = s, Len = e - s, Kind = m.Kind, File = m.File, Off = m.Off + (s - m.Start), Prot = m.Prot, Shared = m.Shared, Registered = m.Registered };
        foreach (var a in m.Present.Where(a => a >= s && a < e)) p.Present.Add(a);
        foreach (var a in m.Markers.Where(a => a >= s && a < e)) p.Markers.Add(a);
        return p;
    }

    private long Mmap(ulong addr, ulong len, int prot, int flags, int fd, ulong off)
    {
        long f;
        if ((f = Log($"mmap {addr:x} {len:x} prot={prot} flags=0x{flags:x} fd={fd}")) != 0) return f;
        bool fixedMap = (flags & MAP_FIXED) != 0;
        if (!fixedMap) addr = (ulong)Alloc(len);
        else if (!_allocs.Any(p => addr >= (ulong)p)) return -EINVAL;
        var m = new Mapping { Start = addr, Len = len, Prot = prot, Shared = (flags & MAP_SHARED) != 0, Off = off };
        if ((flags & MAP_ANONYMOUS) == 0)
        {
            if (!_fds.TryGetValue(fd, out var o) || o.File is null) return -EBADF;
            m.File = o.File;
            m.Kind = o.File.Kind;
            if (o.File.Kind == "memfd") new Span<byte>((void*)addr, checked((int)len)).Clear();  // a fresh tmpfs file reads zeros
            else if (o.File.Kind == "hugetlb") Buffer.MemoryCopy(o.File.Data + off, (void*)addr, len, len);
        }
        Insert(m);
        return (long)addr;
    }

    private long Madvise(ulong start, ulong len, int advice)
    {
        long f;
        if ((f = Log($"madvise {start:x} {len:x} {advice}")) != 0) return f;
        if (advice == MADV_DONTNEED)
            foreach (var m in _maps.Where(m => m.Start < start + len && start < m.End)) m.Present.RemoveWhere(a => a >= start && a < start + len);
        return 0;
    }

    /// <summary>hugetlbfs_read_iter() + adjust_range_hwpoison(): stops before the first poisoned raw page; -EIO if the read starts on one.</summary>
    private long Pread(int fd, byte* buf, long n, long off)
    {
        long f;
        if ((f = Log($"pread64 {fd} {(ulong)buf:x} {n:x} {off:x}")) != 0) return f;
        if (!_fds.TryGetValue(fd, out var o) || o.File is not { Kind: "hugetlb" } file) return -EBADF;
        if (PreadDelayMs > 0) Thread.Sleep(PreadDelayMs);
        long end = Math.Min(off + n, file.Size), at = off;
        while (at < end && !file.Poisoned.Contains(at >> PAGE_SHIFT)) at = Math.Min(end, ((at >> PAGE_SHIFT) + 1) << PAGE_SHIFT);
        long k = at - off;
        if (k == 0 && off < file.Size) return -EIO;
        var m = _maps.FirstOrDefault(m => (ulong)buf >= m.Start && (ulong)buf + (ulong)k <= m.End);
        if (m is null && k > 0) return -EFAULT;
        Buffer.MemoryCopy(file.Data + off, buf, k, k);
        for (ulong a = (ulong)buf & ~0xfffUL; a < (ulong)buf + (ulong)k; a += 4096) m!.Present.Add(a);
        return k;
    }

    private long Ioctl(int fd, long cmd, byte* arg)
    {
        if (!_fds.TryGetValue(fd, out var o) || o.File is not { Kind: "uffd" }) return -EBADF;
        ulong* a = (ulong*)arg;
        long f;
        switch (cmd)
        {
            case UFFDIO_API:
                Calls.Add($"UFFDIO_API 0x{a[1]:x}");
                if (a[0] != UFFD_API || (a[1] & ~UffdFeatures) != 0) return -EINVAL;
                a[1] = UffdFeatures;
                return 0;
            case UFFDIO_REGISTER:
            {
                if ((f = Log($"UFFDIO_REGISTER {a[0]:x} {a[1]:x}")) != 0) return f;
                var m = _maps.FirstOrDefault(m => a[0] >= m.Start && a[0] + a[1] <= m.End);
                if (m is null || m.Kind != "memfd") return -EINVAL;
                Remove(a[0], a[1]);
                var reg = Piece(m, a[0], a[0] + a[1]);
                reg.Registered = true;
                _maps.Add(reg);
                return 0;
            }
            case UFFDIO_POISON:
            {
                if ((f = Log($"UFFDIO_POISON {a[0]:x} {a[1]:x}")) != 0) { *(long*)(arg + 24) = f; return f; }
                var m = _maps.FirstOrDefault(m => a[0] >= m.Start && a[0] + a[1] <= m.End);
                if (m is null || !m.Registered) return -ENOENT;
                if ((a[0] & 0xfff) != 0 || (a[1] & 0xfff) != 0) return -EINVAL;
                for (ulong p = a[0]; p < a[0] + a[1]; p += 4096)
                    if (m.Present.Contains(p) || m.Markers.Contains(p)) { *(long*)(arg + 24) = -EEXIST; return -EEXIST; }
                for (ulong p = a[0]; p < a[0] + a[1]; p += 4096) m.Markers.Add(p);
                *(long*)(arg + 24) = (long)a[1];
                return 0;
            }
            case UFFDIO_UNREGISTER:
                if ((f = Log($"UFFDIO_UNREGISTER {a[0]:x} {a[1]:x}")) != 0) return f;
                foreach (var m in _maps.Where(m => m.Start < a[0] + a[1] && a[0] < m.End)) m.Registered = false;
                return 0;
            default:
                return -EINVAL;
        }
    }

    /// <summary>mremap(MREMAP_MAYMOVE|MREMAP_FIXED): unmaps the destination, moves content and markers (move_ptes()).</summary>
    private long Mremap(ulong old, ulong oldLen, ulong newLen, int flags, ulong dst)
    {
        long f;
        if ((f = Log($"mremap {old:x} {oldLen:x} {newLen:x} {flags} {dst:x}")) != 0) return f;
        if (oldLen != newLen || flags != (MREMAP_MAYMOVE | MREMAP_FIXED)) return -EINVAL;
        var src = _maps.FirstOrDefault(m => m.Start == old && m.Len == oldLen);
        if (src is null) return -EFAULT;
        Buffer.MemoryCopy((void*)old, (void*)dst, newLen, newLen);
        var moved = new Mapping { Start = dst, Len = newLen, Kind = src.Kind, File = src.File, Off = src.Off, Prot = src.Prot, Shared = src.Shared };
        foreach (var mk in src.Markers)
        {
            moved.Markers.Add(mk - old + dst);
            new Span<byte>((void*)(mk - old + dst), 4096).Fill(MarkerFill);
        }
        _maps.Remove(src);
        Insert(moved);
        return (long)dst;
    }
}

using HugeFault.Recovery.Kernel;

namespace HugeFault.Recovery;

/// <summary>A range that passed every check of <see cref="ProtectChecks"/>.</summary>
internal sealed record CheckedRange(int Fd, ulong Start, ulong Length, int Shift, ulong FileOffset, ulong Dev, ulong Ino, int Prot,
    int AccessMode, string Release, bool Thp, IReadOnlyList<string> Notes);

/// <summary>
/// Everything <c>Protect</c> verifies before it changes anything, all errors at once. Reads only: uname,
/// fstatfs/fstat/fcntl of the fd, /proc/self/maps, /proc/sys/vm, /sys/kernel/mm/transparent_hugepage, and a
/// probe userfaultfd that is closed again.
/// </summary>
internal static class ProtectChecks
{
    public static readonly Version Needed = new(6, 6);

    public static (CheckedRange? Range, List<ProtectError> Errors) Check(IKernel k, int fd, nint address, long length,
        IReadOnlyList<(ulong Start, ulong End)> protectedRanges, int maxRegions, RecoveryOptions opt)
    {
        var errors = new List<ProtectError>();
        void Err(ProtectErrorKind kind, string msg) => errors.Add(new(kind, msg));
        var notes = new List<string>();

        // the kernel: 6.6 has both halves (read of a poisoned folio, UFFDIO_POISON)
        string release = KernelCalls.UnameRelease(k) ?? "unknown";
        var ver = KernelCalls.ParseRelease(release);
        if (ver is null || ver < Needed)
            Err(ProtectErrorKind.KernelTooOld, $"Linux {release} is older than 6.6: there a read() of a poisoned hugetlb page fails as a whole "
                + "(hugetlbfs_read_iter() before commit 38c1ddbde6c6, 'hugetlbfs: improve read HWPOISON hugepage') and UFFDIO_POISON does not exist, "
                + "so the good data cannot be copied out and a lost 4 KiB cannot be marked; run on Linux 6.6 or later. Nothing was changed.");
        string? recovery = KernelCalls.ReadText(k, "/proc/sys/vm/memory_failure_recovery", out _);
        if (recovery is null)
            Err(ProtectErrorKind.NoMemoryFailure, $"/proc/sys/vm/memory_failure_recovery is missing: Linux {release} is built without CONFIG_MEMORY_FAILURE, "
                + "so a memory error is never reported as a SIGBUS the agent could act on; use a kernel with CONFIG_MEMORY_FAILURE=y.");
        else if (recovery.Trim() == "0")
            notes.Add("vm.memory_failure_recovery = 0: the kernel panics on a memory error before the agent can act (set it to 1)");

        var (ufd, features, apiErr) = KernelCalls.OpenUserfaultfd(k, 0);
        if (ufd < 0)
            Err(ProtectErrorKind.UserfaultfdUnavailable, ufd == -Uapi.ENOSYS
                ? "userfaultfd() is ENOSYS: the kernel is built without CONFIG_USERFAULTFD."
                : $"userfaultfd() failed with {Uapi.ErrnoName(ufd)}: allow it with sysctl vm.unprivileged_userfaultfd=1 or give the process CAP_SYS_PTRACE.");
        else
        {
            k.Syscall(Uapi.__NR_close, ufd);
            if (apiErr < 0) Err(ProtectErrorKind.NoUffdPoison, $"UFFDIO_API failed with {Uapi.ErrnoName(apiErr)}.");
            else if ((features & Uapi.UFFD_FEATURE_POISON) == 0)
                Err(ProtectErrorKind.NoUffdPoison, $"userfaultfd on Linux {release} does not offer UFFD_FEATURE_POISON (features 0x{features:x}): "
                    + "UFFDIO_POISON is Linux 6.6 or later.");
        }

        // the file
        var (type, bsize, sfErr) = KernelCalls.Fstatfs(k, fd);
        int shift = 0, access = 0;
        ulong dev = 0, ino = 0;
        if (sfErr < 0) Err(ProtectErrorKind.BadFile, $"fd {fd}: fstatfs() failed with {Uapi.ErrnoName(sfErr)}; pass the fd of the hugetlbfs file or hugetlb memfd that is mapped.");
        else if (type != Uapi.HUGETLBFS_MAGIC)
            Err(ProtectErrorKind.BadFile, $"fd {fd} is not on hugetlbfs (f_type 0x{type:x}); the agent protects MAP_SHARED mappings of hugetlbfs files and MFD_HUGETLB memfds.");
        else if (bsize <= 0 || (bsize & (bsize - 1)) != 0)
            Err(ProtectErrorKind.BadFile, $"fd {fd}: hugetlbfs reports a huge page size of {bsize}.");
        else
        {
            shift = System.Numerics.BitOperations.Log2((ulong)bsize);
            long fl = k.Syscall(Uapi.__NR_fcntl, fd, Uapi.F_GETFL);
            var st = KernelCalls.Fstat(k, fd);
            if (fl < 0 || st.Err < 0) Err(ProtectErrorKind.BadFile, $"fd {fd}: fcntl/fstat failed with {Uapi.ErrnoName(fl < 0 ? fl : st.Err)}.");
            else if ((fl & Uapi.O_ACCMODE) == Uapi.O_WRONLY) Err(ProtectErrorKind.BadFile, $"fd {fd} is write-only; the agent reads the good data with pread(): open it O_RDWR or O_RDONLY.");
            else { access = (int)(fl & Uapi.O_ACCMODE); dev = st.Dev; ino = st.Ino; }
        }

        // the range
        ulong start = (ulong)address, len = (ulong)length, hp = shift > 0 ? 1UL << shift : 0;
        if (length <= 0 || address == 0) Err(ProtectErrorKind.Unaligned, $"address 0x{start:x} length {length}: give a non-empty mapped range.");
        else if (hp != 0 && ((start & (hp - 1)) != 0 || (len & (hp - 1)) != 0))
            Err(ProtectErrorKind.Unaligned, $"address 0x{start:x} length 0x{len:x} are not multiples of the huge page size 0x{hp:x}.");
        ulong fileOff = 0;
        int prot = 0;
        if (ino != 0 && length > 0 && address != 0)
        {
            var maps = KernelCalls.ReadText(k, "/proc/self/maps", out long mErr);
            if (maps is null) Err(ProtectErrorKind.NotMapped, $"cannot read /proc/self/maps ({Uapi.ErrnoName(mErr)}).");
            else (fileOff, prot) = CheckMapping(maps, start, len, dev, ino, fd, Err);
        }
        foreach (var (s, e) in protectedRanges)
            if (start < e && s < start + len) Err(ProtectErrorKind.Conflict, $"0x{start:x}-0x{start + len:x} overlaps the protected range 0x{s:x}-0x{e:x}.");
        if (protectedRanges.Count >= maxRegions) Err(ProtectErrorKind.Conflict, $"already {maxRegions} ranges protected (the most one agent takes).");

        bool thp = opt.UseShmemThp && ShmemThp(k);
        if (errors.Count > 0) return (null, errors);
        return (new CheckedRange(fd, start, len, shift, fileOff, dev, ino, prot, access, release, thp, notes), errors);
    }

    /// <summary>Every byte of [start, start+len) is a MAP_SHARED mapping of the file, with contiguous file offsets.</summary>
    private static (ulong FileOff, int Prot) CheckMapping(string maps, ulong start, ulong len, ulong dev, ulong ino, int fd, Action<ProtectErrorKind, string> err)
    {
        var (maj, min) = MapsLine.DevParts(dev);
        ulong at = start, end = start + len, fileOff = 0;
        int prot = -1;
        foreach (var raw in maps.Split('\n'))
        {
            var m = MapsLine.Parse(raw);
            if (m is null || m.End <= at || m.Start > at) continue;
            if (m.Inode != ino || m.Major != maj || m.Minor != min)
            { err(ProtectErrorKind.NotMapped, $"0x{at:x} is mapped from another file ({m.Path}), not fd {fd}."); return (0, 0); }
            if (!m.Shared)
            { err(ProtectErrorKind.NotMapped, $"0x{m.Start:x}-0x{m.End:x} is a MAP_PRIVATE mapping; the agent protects MAP_SHARED mappings (a private copy is not in the file)."); return (0, 0); }
            ulong off = m.Offset + (at - m.Start);
            if (at == start) { fileOff = off; prot = m.Prot; }
            else if (off != fileOff + (at - start))
            { err(ProtectErrorKind.NotMapped, $"the file offsets of 0x{start:x}-0x{end:x} are not contiguous at 0x{at:x}; protect each mapping separately."); return (0, 0); }
            else if (m.Prot != prot)
            { err(ProtectErrorKind.NotMapped, $"0x{start:x}-0x{end:x} mixes protections; protect ranges of one protection."); return (0, 0); }
            if ((m.Prot & Uapi.PROT_READ) == 0)
            { err(ProtectErrorKind.NotMapped, $"0x{m.Start:x}-0x{m.End:x} is not readable."); return (0, 0); }
            at = Math.Min(m.End, end);
            if (at >= end) return (fileOff, prot);
        }
        err(ProtectErrorKind.NotMapped, $"0x{at:x} (in 0x{start:x}-0x{end:x}) is not mapped from fd {fd}.");
        return (0, 0);
    }

    /// <summary>Shmem THP for memfds: /sys/kernel/mm/transparent_hugepage/shmem_enabled (or its 2 MiB size knob, 6.11+) allows it.</summary>
    internal static bool ShmemThp(IKernel k)
    {
        static string? Selected(string? s) { if (s is null) return null; int a = s.IndexOf('['), b = s.IndexOf(']'); return a >= 0 && b > a ? s[(a + 1)..b] : null; }
        var top = Selected(KernelCalls.ReadText(k, "/sys/kernel/mm/transparent_hugepage/shmem_enabled", out _));
        var pmd = Selected(KernelCalls.ReadText(k, "/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled", out _));
        static bool On(string? v) => v is "always" or "within_size" or "advise" or "force";
        return pmd is null or "inherit" ? On(top) : On(pmd);
    }
}

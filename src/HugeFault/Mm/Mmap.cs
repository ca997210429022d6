using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault;

/// <summary>mmap prot/flags and madvise advice values (include/uapi/asm-generic/mman*.h).</summary>
public static class Mman
{
    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2;
    public const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20,
        MAP_NORESERVE = 0x4000, MAP_POPULATE = 0x8000, MAP_HUGETLB = 0x40000;
    public const int MAP_HUGE_SHIFT = 26;
    public const int MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT, MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT;
    public const int MADV_DONTNEED = 4, MADV_REMOVE = 9, MADV_COLLAPSE = 25, MADV_SPLIT = 26,
        MADV_HWPOISON = 100, MADV_SOFT_OFFLINE = 101;
}

// mmap/munmap/fork/exit/madvise (mm/mmap.c, mm/vma.c, kernel/fork.c, mm/madvise.c).
public sealed partial class Kernel
{
    /// <summary>The user address space of x86-64 with 4-level paging (arch/x86/include/asm/page_64_types.h TASK_SIZE_MAX).</summary>
    public const ulong TASK_SIZE = (1UL << 47) - Units.PAGE_SIZE;
    /// <summary>vm.mmap_min_addr's default: nothing is mapped below it.</summary>
    public const ulong MMAP_MIN_ADDR = 0x10000;

    /// <summary>mmap(): returns the address. hugetlb mappings reserve pages here (hugetlb_reserve_pages()).</summary>
    public SysResult Mmap(TaskStruct t, ulong length, int prot, int flags, int fd, ulong offset, string name)
    {
        // do_mmap(): "if (!len) return -EINVAL;", then PAGE_ALIGN(len) == 0 (an overflow) is -ENOMEM, and
        // __get_unmapped_area(): "if (len > TASK_SIZE) return -ENOMEM;"
        if (length == 0) return SysResult.Err(Errno.EINVAL);
        if (length > TASK_SIZE) return SysResult.Err(Errno.ENOMEM);
        bool shared = (flags & Mman.MAP_SHARED) != 0, priv = (flags & Mman.MAP_PRIVATE) != 0;
        if (shared == priv) return SysResult.Err(Errno.EINVAL);
        Inode? file = null;
        Hstate? h = null;
        bool anon = (flags & Mman.MAP_ANONYMOUS) != 0;
        if (anon)
        {
            if ((flags & Mman.MAP_HUGETLB) != 0)
            {
                int shift = (flags >> Mman.MAP_HUGE_SHIFT) & 0x3f;
                h = shift == 0 ? H2M : shift == 30 ? H1G : shift == 21 ? H2M : null;
                if (h is null) return SysResult.Err(Errno.EINVAL);
                length = Units.AlignUp(length, h.Size); // ksys_mmap_pgoff() aligns anonymous hugetlb lengths
                // hugetlb_file_setup(): an internal unlinked hugetlbfs inode
                file = new Inode(NewIno(), FsKind.Hugetlbfs, "anon_hugepage", h) { Internal = true, Size = length, Unlinked = true };
                AddInode(file);
                offset = 0;
            }
        }
        else
        {
            if (!t.Fds.TryGetValue(fd, out var of) || of.Uffd is not null) return SysResult.Err(Errno.EBADF);
            file = of.Inode;
            h = file.Hstate;
            if (h is not null)
            {
                if (!Units.IsAligned(offset, h.Size)) return SysResult.Err(Errno.EINVAL);
                if (!Units.IsAligned(length, h.Size)) return SysResult.Err(Errno.EINVAL); // hugetlb_get_unmapped_area()
            }
            else if (!Units.IsAligned(offset, Units.PAGE_SIZE)) return SysResult.Err(Errno.EINVAL);
        }
        length = Units.AlignUp(length, Units.PAGE_SIZE);
        ulong align = h?.Size ?? Units.PAGE_SIZE;
        // vm_unmapped_area(): no gap of this length below the mmap base (top-down allocation) is -ENOMEM
        if (length > TASK_SIZE || t.Mm.MmapBase < MMAP_MIN_ADDR + length + Math.Max(align, Units.PMD_SIZE)) return SysResult.Err(Errno.ENOMEM);
        ulong va = Units.AlignDown(t.Mm.MmapBase - length, Math.Max(align, Units.PMD_SIZE));
        var vf = VmFlags.None;
        if ((prot & Mman.PROT_READ) != 0) vf |= VmFlags.VM_READ;
        if ((prot & Mman.PROT_WRITE) != 0) vf |= VmFlags.VM_WRITE;
        if (shared) vf |= VmFlags.VM_SHARED;
        if (h is not null) vf |= VmFlags.VM_HUGETLB;
        if ((flags & Mman.MAP_NORESERVE) != 0) vf |= VmFlags.VM_NORESERVE;
        var vma = new Vma(t.Mm, va, va + length, vf, file, offset >> Units.PAGE_SHIFT) { Hstate = h, Name = name, NameBase = va };
        if (h is not null && (vf & VmFlags.VM_NORESERVE) == 0)
        {
            if (!HugetlbReservePages(vma)) { return SysResult.Err(Errno.ENOMEM); }
        }
        if (anon && h is null) vma.File = null;
        if (!shared && (anon || h is not null)) vma.AnonVma = new AnonVma();
        VmaLink(vma);
        t.Mm.MmapBase = va;
        if (anon && h is null && shared)
        {
            // shared anonymous memory is shmem: give it an internal tmpfs inode
            var shm = new Inode(NewIno(), FsKind.Tmpfs, "dev/zero", null) { Internal = true, Size = length, Unlinked = true };
            AddInode(shm);
            vma.File = shm; shm.IMmap.Add(vma);
        }
        if ((flags & Mman.MAP_POPULATE) != 0) MmPopulate(t, vma);
        return SysResult.Ok((long)va);
    }

    /// <summary>
    /// __mm_populate() for MAP_POPULATE: faults every page in, as GUP does (a write fault for a private writable
    /// mapping); the first page that cannot be had (a poisoned folio, no free page) ends it, silently: no signal.
    /// </summary>
    private void MmPopulate(TaskStruct t, Vma vma)
    {
        bool write = (vma.Flags & (VmFlags.VM_WRITE | VmFlags.VM_SHARED)) == VmFlags.VM_WRITE;
        ulong step = vma.Hstate?.Size ?? Units.PAGE_SIZE;
        for (ulong a = vma.Start; a < vma.End; a += step)
        {
            var e = Walk(t.Mm, a).Entry;
            if (e.Present && (!write || e.Writable)) continue;
            if (HandleMmFault(t, vma, a, write, fromGup: true).Kind != FaultKind.Mapped) return;
        }
    }

    /// <summary>hugetlb_reserve_pages(): shared mappings reserve the file's unfaulted, unreserved indices; private ones reserve all.</summary>
    private bool HugetlbReservePages(Vma vma)
    {
        var h = vma.Hstate!;
        ulong first = vma.FileOffset(vma.Start) >> h.Shift, n = vma.Length >> h.Shift;
        // at least n minus what the file already has must be newly reserved: beyond the pool and its overcommit headroom
        // it fails at once, without walking n indices (a mapping of terabytes)
        long have = vma.IsShared ? vma.File!.PageCache.Count + vma.File.SharedResv.Count : 0;
        long headroom = h.free_huge_pages - h.resv_huge_pages + Math.Max(0, h.nr_overcommit_huge_pages - h.surplus_huge_pages);
        if ((long)n - have > headroom) return false;
        if (vma.IsShared)
        {
            var inode = vma.File!;
            var add = new List<ulong>();
            for (ulong i = first; i < first + n; i++)
                if (!inode.PageCache.ContainsKey(i) && !inode.SharedResv.Contains(i)) add.Add(i);
            if (!HugetlbAcctMemory(h, add.Count)) return false;
            foreach (var i in add) inode.SharedResv.Add(i);
        }
        else
        {
            if (!HugetlbAcctMemory(h, (long)n)) return false;
            vma.PrivateResv = new HashSet<ulong>();
            for (ulong i = first; i < first + n; i++) vma.PrivateResv.Add(i);
        }
        return true;
    }

    /// <summary>munmap(): hugetlb ranges must be huge-page aligned in start and length.</summary>
    public SysResult Munmap(TaskStruct t, ulong start, ulong length)
    {
        if (!Units.IsAligned(start, Units.PAGE_SIZE) || length == 0) return SysResult.Err(Errno.EINVAL);
        ulong end = start + Units.AlignUp(length, Units.PAGE_SIZE);
        foreach (var v in t.Mm.Vmas.Where(v => v.Start < end && v.End > start).ToList())
        {
            if (v.Hstate is { } h && (!Units.IsAligned(Math.Max(start, v.Start), h.Size) || !Units.IsAligned(Math.Min(end, v.End), h.Size)))
                return SysResult.Err(Errno.EINVAL);
        }
        foreach (var v in t.Mm.Vmas.Where(v => v.Start < end && v.End > start).ToList())
            UnmapVmaRange(v, Math.Max(start, v.Start), Math.Min(end, v.End));
        return SysResult.Ok();
    }

    /// <summary>
    /// hugetlb_vm_op_close() for [s, e) of a MAP_PRIVATE hugetlb VMA: the reservations of the range that no fault
    /// consumed go back (hugetlb_acct_memory(h, -n)). Called at unmap, and when a design turns the range into a
    /// non-hugetlb VMA (which would never return them).
    /// </summary>
    internal void ReleasePrivateReservations(Vma v, Hstate h, ulong s, ulong e)
    {
        if (v.PrivateResv is not { } pr) return;
        ulong fi = v.FileOffset(s) >> h.Shift, li = v.FileOffset(e - 1) >> h.Shift;
        long n = pr.RemoveWhere(i => i >= fi && i <= li);
        if (n > 0) HugetlbAcctMemory(h, -n);
    }

    /// <summary>Unmaps [s, e) of one VMA, splitting it when the range is in the middle (__split_vma + vms_complete_munmap_vmas).</summary>
    internal void UnmapVmaRange(Vma v, ulong s, ulong e)
    {
        var mm = v.Mm;
        ZapRange(mm, s, e);
        if (v.Hstate is { } h) ReleasePrivateReservations(v, h, s, e);
        if (s == v.Start && e == v.End) { DetachVma(v); return; }
        if (s == v.Start) { v.PgOff += (e - v.Start) >> Units.PAGE_SHIFT; v.Start = e; return; }
        if (e == v.End) { v.End = s; return; }
        // middle: split into two VMAs
        var tail = new Vma(mm, e, v.End, v.Flags, v.File, v.PgOff + ((e - v.Start) >> Units.PAGE_SHIFT))
        { Hstate = v.Hstate, AnonVma = v.AnonVma, Name = v.Name, NameBase = v.NameBase, Uffd = v.Uffd, PrivateResv = v.PrivateResv };
        v.End = s;
        VmaLink(tail);
    }

    /// <summary>vma_link(): a new VMA goes into its mm's VMA tree, its file's i_mmap and its anon_vma's chain (<see cref="DetachVma"/> undoes it).</summary>
    internal static void VmaLink(Vma v)
    {
        v.Mm.Vmas.Add(v);
        v.File?.IMmap.Add(v);
        v.AnonVma?.Vmas.Add(v);
    }

    private void DetachVma(Vma v)
    {
        v.Mm.Vmas.Remove(v);
        v.File?.IMmap.Remove(v);
        v.AnonVma?.Vmas.Remove(v);
        if (v.File is { } f && f.IMmap.Count == 0 && f.OpenCount == 0)
        {
            if (f.Unlinked) EvictInode(f);
            Policy.OnFileReleased(this, f);
        }
    }

    /// <summary>Last reference to an unlinked inode: truncate its page cache (evict()).</summary>
    internal void EvictInode(Inode f)
    {
        if (f.IsHugetlb) RemoveInodeHugepages(f, 0, ulong.MaxValue);
        else TruncateShmem(f, 0, ulong.MaxValue);
    }

    /// <summary>fork(): copies VMAs; page tables are copied only where a fault could not refill them (vma_needs_copy(): anon_vma), including hwpoison entries.</summary>
    public TaskStruct Fork(TaskStruct parent, string comm)
    {
        var child = Spawn(comm);
        child.MceKill = parent.MceKill; child.Sigbus = parent.Sigbus;
        foreach (var kv in parent.Fds) { child.Fds[kv.Key] = kv.Value; kv.Value.Inode.OpenCount++; }
        var uffdCtxs = new Dictionary<Userfaultfd, Userfaultfd>();
        foreach (var v in parent.Mm.Vmas.OrderBy(v => v.Start))
        {
            var nv = new Vma(child.Mm, v.Start, v.End, v.Flags & ~(VmFlags.VM_UFFD_MISSING | VmFlags.VM_UFFD_MINOR | VmFlags.VM_UFFD_WP), v.File, v.PgOff)
            { Hstate = v.Hstate, AnonVma = v.AnonVma, Name = v.Name, NameBase = v.NameBase };
            VmaLink(nv);
            DupUserfaultfd(v, nv, uffdCtxs);
            if (v.PrivateResv is not null) nv.PrivateResv = new HashSet<ulong>(); // the parent owns the reservations
            if (v.AnonVma is null) continue;
            // copy_hugetlb_page_range()/copy_page_range(): private mappings, write-protected for COW
            ForEachLeaf(parent.Mm, v.Start, v.End, r =>
            {
                var e = r.Entry;
                var dst = WalkAlloc(child.Mm, r.Va, r.Level);
                if (dst is null) return;
                if (e.Present)
                {
                    var f = Phys.FolioOf(e.Pfn)!;
                    var ro = e.WithWritable(false);
                    r.Table.Set(r.Index, ro);
                    dst.Value.Table.Set(dst.Value.Index, ro);
                    AddRmap(f, e.Pfn, r.Size, +1);
                }
                else dst.Value.Table.Set(dst.Value.Index, e);
                Stats.EntriesWritten++;
            });
        }
        child.Mm.MmapBase = parent.Mm.MmapBase;
        return child;
    }

    /// <summary>do_exit(): the task dies; the mm goes when its last user does (exit_mmap), open files are closed.</summary>
    public void DoExit(TaskStruct t, string reason)
    {
        if (!t.Alive) return;
        t.Alive = false; t.ExitReason = reason;
        if (--t.Mm.Users == 0)
        {
            // exit_mmap(): unmap everything, free the remaining page tables and the PGD
            foreach (var v in t.Mm.Vmas.OrderBy(v => v.Start).ToList()) UnmapVmaRange(v, v.Start, v.End);
            ZapRange(t.Mm, 0, 1UL << 48);
            FreeTable(t.Mm, t.Mm.Pgd);
        }
        // the file table goes with the last task that shares it (threads share their process's)
        if (!Tasks.Any(x => x.Alive && ReferenceEquals(x.Fds, t.Fds)))
            foreach (var fd in t.Fds.Keys.ToList()) Close(t, fd);
        KAct($"{t} exited: {reason}");
    }

    /// <summary>madvise(): DONTNEED/REMOVE, HWPOISON and SOFT_OFFLINE, plus the policies' own advice (MADV_SPLIT/MADV_COLLAPSE under HGM).</summary>
    public SysResult Madvise(TaskStruct t, ulong start, ulong length, int advice)
    {
        if (!Units.IsAligned(start, Units.PAGE_SIZE)) return SysResult.Err(Errno.EINVAL);
        ulong end = start + Units.AlignUp(length, Units.PAGE_SIZE);
        switch (advice)
        {
            case Mman.MADV_HWPOISON:
            case Mman.MADV_SOFT_OFFLINE:
                return MadviseInjectError(t, start, end, advice);
            case Mman.MADV_DONTNEED:
                foreach (var v in t.Mm.Vmas.Where(v => v.Start < end && v.End > start).ToList())
                {
                    ulong s = Math.Max(start, v.Start), e = Math.Min(end, v.End);
                    if (v.Hstate is { } h && (!Units.IsAligned(s, h.Size) || !Units.IsAligned(e, h.Size))) return SysResult.Err(Errno.EINVAL);
                    // __unmap_hugepage_range(): zapping an anonymous page of the reserving private VMA restores its
                    // reservation (unless the pool has surplus pages), so the page cannot be stolen (21c on 6.12)
                    var restore = new List<(ulong Idx, Folio F)>();
                    if (v.Hstate is { } hs && v.PrivateResv is not null)
                        ForEachLeaf(t.Mm, s, e, r =>
                        {
                            if (r.Entry.Present && Phys.FolioOf(r.Entry.Pfn) is { IsAnon: true } f && r.Size >= f.Size && hs.surplus_huge_pages == 0)
                                restore.Add((v.FileOffset(r.Va) >> hs.Shift, f));
                        });
                    ZapRange(t.Mm, s, e);
                    // the reservation comes back with the page, in free_huge_folio() (restore_reserve): only if it was freed
                    foreach (var (idx, f) in restore)
                        if (f.Flags.Has(PageFlags.HugetlbFreed) && Phys.Folios.ContainsKey(f.Pfn) && v.Hstate!.resv_huge_pages < v.Hstate.free_huge_pages && v.PrivateResv!.Add(idx))
                            v.Hstate.resv_huge_pages++;
                }
                return SysResult.Ok();
            default:
                var r = Policy.Madvise(this, t, start, end, advice);
                return r ?? SysResult.Err(Errno.EINVAL);
        }
    }

    /// <summary>
    /// madvise_inject_error(): for each page, get_user_pages_fast() (which faults it in, and fails with
    /// -EFAULT on a hwpoison entry), then memory_failure(pfn, MF_ACTION_REQUIRED|MF_COUNT_INCREASED|MF_SW_SIMULATED)
    /// (MF_ACTION_REQUIRED since 6.11: <see cref="MadviseHwpoisonFlags"/>)
    /// or soft_offline_page(); advances by the folio size.
    /// </summary>
    private SysResult MadviseInjectError(TaskStruct t, ulong start, ulong end, int advice)
    {
        ulong cur = start;
        while (cur < end)
        {
            var gup = GetUserPage(t, cur);
            if (gup.Errno != 0) return SysResult.Err(gup.Errno);
            ulong pfn = gup.Pfn;
            var folio = Phys.FolioOf(pfn)!;
            if (advice == Mman.MADV_SOFT_OFFLINE)
            {
                Log($"Soft offlining pfn {Units.Hex(pfn)} at process virtual address {Units.Hex(cur)}");
                int r = SoftOfflinePage(pfn);
                if (r != 0) return SysResult.Err(-r);
            }
            else
            {
                Log($"Injecting memory failure for pfn {Units.Hex(pfn)} at process virtual address {Units.Hex(cur)}");
                int r = MemoryFailureIn(t, pfn, MadviseHwpoisonFlags);
                if (Panicked) return SysResult.Ok();
                if (r == -Errno.EOPNOTSUPP) r = 0;
                if (r != 0) return SysResult.Err(-r);
            }
            cur += folio.Size; // start += size: not re-aligned, as the kernel does
        }
        return SysResult.Ok();
    }

    /// <summary>get_user_pages_fast() for one page: faults it in if needed; -EFAULT where the fault would SIGBUS/SIGSEGV (no FOLL_HWPOISON).</summary>
    internal (ulong Pfn, int Errno) GetUserPage(TaskStruct t, ulong va)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var vma = t.Mm.FindVma(va);
            if (vma is null) return (0, Errno.EFAULT);
            var r = Walk(t.Mm, va);
            var e = r.Entry;
            if (e.Present && (r.Level == PtLevel.Pte || e.Huge))
                return (e.Pfn + ((va - r.Va) >> Units.PAGE_SHIFT), 0);
            var fr = HandleMmFault(t, vma, va, write: false, fromGup: true);
            if (fr.Kind != FaultKind.Mapped) return (0, Errno.EFAULT);
        }
        return (0, Errno.EFAULT);
    }

    /// <summary>prctl(PR_MCE_KILL, PR_MCE_KILL_SET/CLEAR, PR_MCE_KILL_EARLY/LATE/DEFAULT).</summary>
    public SysResult PrctlMceKill(TaskStruct t, MceKillPolicy p) { t.MceKill = p; return SysResult.Ok(); }
}

public sealed partial class Kernel
{
    /// <summary>__split_vma() twice: makes [s, e) of vma its own VMA and returns it.</summary>
    internal Vma SplitVmaRange(Vma v, ulong s, ulong e)
    {
        if (s == v.Start && e == v.End) return v;
        var mm = v.Mm;
        Vma Clone(ulong a, ulong b) => new(mm, a, b, v.Flags, v.File, v.PgOff + ((a - v.Start) >> Units.PAGE_SHIFT))
        { Hstate = v.Hstate, AnonVma = v.AnonVma, Name = v.Name, NameBase = v.NameBase, Uffd = v.Uffd, PrivateResv = v.PrivateResv };
        var mid = Clone(s, e);
        if (e < v.End) VmaLink(Clone(e, v.End));
        VmaLink(mid);
        if (s > v.Start) v.End = s;
        else { mm.Vmas.Remove(v); v.File?.IMmap.Remove(v); v.AnonVma?.Vmas.Remove(v); }
        return mid;
    }
}

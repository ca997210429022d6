using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault;

/// <summary>memfd_create() flags (include/uapi/linux/memfd.h).</summary>
public static class Memfd
{
    public const uint MFD_CLOEXEC = 0x1, MFD_ALLOW_SEALING = 0x2, MFD_HUGETLB = 0x4;
    /// <summary>Jiaqi Yan's proposal (not mainline): keep poisoned hugetlb folios mapped.</summary>
    public const uint MFD_MF_KEEP_UE_MAPPED = 0x20;
    public const int MFD_HUGE_SHIFT = 26;
    public const uint MFD_HUGE_2MB = 21u << MFD_HUGE_SHIFT, MFD_HUGE_1GB = 30u << MFD_HUGE_SHIFT;
    public const int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;
    public const int SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2;
}

/// <summary>Checks the bytes a read returns against an expected pattern, cacheline by cacheline, without storing them.</summary>
public sealed class ContentCheck
{
    /// <summary>Seed of the expected pattern (ContentTag.Zero for zeros) and the pattern offset of buffer byte 0.</summary>
    public ContentCheck(ulong seed, long patternOffset) { Seed = seed; PatternOffset = patternOffset; }
    public ulong Seed { get; }
    public long PatternOffset { get; }
    public long LinesChecked { get; private set; }
    public long Mismatches { get; private set; }
    public long FirstMismatchAt { get; private set; } = -1;

    /// <summary>Compares n bytes of folio f (null: a hole or zero page) at folio offset fo, returned at buffer offset bo.</summary>
    public void Check(Folio? f, ulong fo, ulong n, ulong bo)
    {
        // full lines of the folio inside [fo, fo+n)
        ulong first = Units.AlignUp(fo, Units.CACHELINE), end = Units.AlignDown(fo + n, Units.CACHELINE);
        if (end <= first) return;
        uint l0 = (uint)(first >> Units.CACHELINE_SHIFT), l1 = (uint)(end >> Units.CACHELINE_SHIFT);
        long po = PatternOffset + (long)(bo + (first - fo));
        LinesChecked += l1 - l0;
        long bad, firstBad;
        if (f?.Content is { } c) bad = c.CountMismatches(l0, l1, Seed, po, out firstBad);
        else { bad = Seed == ContentTag.Zero ? 0 : l1 - l0; firstBad = bad > 0 ? l0 : -1; }
        if (bad > 0) { Mismatches += bad; if (FirstMismatchAt < 0) FirstMismatchAt = (long)(bo + (((ulong)firstBad << Units.CACHELINE_SHIFT) - fo)); }
    }
}

// memfd/hugetlbfs/tmpfs file operations (mm/memfd.c, fs/hugetlbfs/inode.c, mm/shmem.c, fs/read_write.c).
public sealed partial class Kernel
{
    private int AllocFd(TaskStruct t, OpenFile f)
    {
        int fd = 3;
        while (t.Fds.ContainsKey(fd)) fd++;
        t.Fds[fd] = f;
        f.Inode.OpenCount++;
        return fd;
    }

    /// <summary>memfd_create(): MFD_HUGETLB gives a hugetlbfs inode of the requested (or default 2 MiB) size.</summary>
    public SysResult MemfdCreate(TaskStruct t, string name, uint flags)
    {
        uint hugeShift = (flags >> Memfd.MFD_HUGE_SHIFT) & 0x3f;
        uint known = Memfd.MFD_CLOEXEC | Memfd.MFD_ALLOW_SEALING | Memfd.MFD_HUGETLB | Memfd.MFD_MF_KEEP_UE_MAPPED;
        if ((flags & ~known & ~(0x3fu << Memfd.MFD_HUGE_SHIFT)) != 0) return SysResult.Err(Errno.EINVAL);
        bool huge = (flags & Memfd.MFD_HUGETLB) != 0;
        if (!huge && hugeShift != 0) return SysResult.Err(Errno.EINVAL);
        bool keep = (flags & Memfd.MFD_MF_KEEP_UE_MAPPED) != 0;
        if (keep && (!huge || !Policy.SupportsKeepUeMapped)) return SysResult.Err(Errno.EINVAL);
        Hstate? h = null;
        if (huge)
        {
            h = hugeShift switch { 0 or 21 => H2M, 30 => H1G, _ => null };
            if (h is null) return SysResult.Err(Errno.EINVAL);
        }
        var inode = new Inode(NewIno(), huge ? FsKind.Hugetlbfs : FsKind.Tmpfs, "memfd:" + name, h) { KeepUeMapped = keep, Unlinked = true };
        AddInode(inode);
        return SysResult.Ok(AllocFd(t, new OpenFile(inode)));
    }

    /// <summary>open(O_CREAT) of a file on a hugetlbfs mount (pagesize=2M or 1G) or on tmpfs (/dev/shm).</summary>
    public SysResult OpenFile(TaskStruct t, string path, bool create)
    {
        var inode = _inodes.FirstOrDefault(i => !i.Unlinked && i.Name == path);
        if (inode is null)
        {
            if (!create) return SysResult.Err(Errno.ENOENT);
            Hstate? h = null; FsKind kind;
            if (path.StartsWith("/dev/hugepages1G/", StringComparison.Ordinal)) { h = H1G; kind = FsKind.Hugetlbfs; }
            else if (path.StartsWith("/dev/hugepages/", StringComparison.Ordinal)) { h = H2M; kind = FsKind.Hugetlbfs; }
            else if (path.StartsWith("/dev/shm/", StringComparison.Ordinal)) kind = FsKind.Tmpfs;
            else return SysResult.Err(Errno.ENOENT);
            inode = new Inode(NewIno(), kind, path, h);
            AddInode(inode);
        }
        return SysResult.Ok(AllocFd(t, new OpenFile(inode)));
    }

    /// <summary>unlink(): the name goes; the inode lives while open or mapped.</summary>
    public SysResult Unlink(string path)
    {
        var inode = _inodes.FirstOrDefault(i => !i.Unlinked && i.Name == path);
        if (inode is null) return SysResult.Err(Errno.ENOENT);
        inode.Unlinked = true;
        if (inode.OpenCount == 0 && inode.IMmap.Count == 0) EvictInode(inode);
        return SysResult.Ok();
    }

    public SysResult Close(TaskStruct t, int fd)
    {
        if (!t.Fds.Remove(fd, out var of)) return SysResult.Err(Errno.EBADF);
        var inode = of.Inode;
        inode.OpenCount--;
        if (inode.OpenCount == 0 && inode.IMmap.Count == 0)
        {
            if (inode.Unlinked) EvictInode(inode);
            Policy.OnFileReleased(this, inode);
        }
        return SysResult.Ok();
    }

    private bool TryFile(TaskStruct t, int fd, out OpenFile of)
    {
        if (t.Fds.TryGetValue(fd, out var f) && f.Uffd is null) { of = f; return true; }
        of = null!; return false;
    }

    /// <summary>ftruncate(): hugetlbfs sizes are rounded to the huge page size when shrinking (hugetlb_vmtruncate()).</summary>
    public SysResult Ftruncate(TaskStruct t, int fd, long length)
    {
        if (!TryFile(t, fd, out var of)) return SysResult.Err(Errno.EBADF);
        if (length < 0) return SysResult.Err(Errno.EINVAL);
        var inode = of.Inode;
        if (inode.IsHugetlb && !Units.IsAligned((ulong)length, inode.FolioSize)) return SysResult.Err(Errno.EINVAL);
        if ((ulong)length < inode.Size)
        {
            if (inode.IsHugetlb) RemoveInodeHugepages(inode, (ulong)length, ulong.MaxValue);
            else TruncateShmem(inode, (ulong)length, ulong.MaxValue);
        }
        inode.Size = (ulong)length;
        return SysResult.Ok();
    }

    /// <summary>fallocate(): PUNCH_HOLE (with KEEP_SIZE) removes folios; mode 0 preallocates (hugetlbfs_fallocate()).</summary>
    public SysResult Fallocate(TaskStruct t, int fd, int mode, ulong offset, ulong length)
    {
        if (!TryFile(t, fd, out var of)) return SysResult.Err(Errno.EBADF);
        var inode = of.Inode;
        if (length == 0) return SysResult.Err(Errno.EINVAL);
        if ((mode & Memfd.FALLOC_FL_PUNCH_HOLE) != 0)
        {
            if ((mode & Memfd.FALLOC_FL_KEEP_SIZE) == 0) return SysResult.Err(Errno.EOPNOTSUPP);
            if (inode.IsHugetlb) RemoveInodeHugepages(inode, offset, offset + length);
            else TruncateShmem(inode, offset, offset + length);
            return SysResult.Ok();
        }
        if (mode != 0 && mode != Memfd.FALLOC_FL_KEEP_SIZE) return SysResult.Err(Errno.EOPNOTSUPP);
        if (inode.IsHugetlb)
        {
            var h = inode.Hstate!;
            ulong first = offset >> h.Shift, last = (offset + length - 1) >> h.Shift;
            for (ulong i = first; i <= last; i++)
            {
                if (inode.PageCache.ContainsKey(i)) continue;
                bool resv = inode.SharedResv.Remove(i);
                var f = AllocHugetlbFolio(h, resv);
                if (f is null) { if (resv) inode.SharedResv.Add(i); return SysResult.Err(Errno.ENOSPC); }
                f.EnsureContent().Clear();
                HugetlbAddToPageCache(inode, i, f);
                FolioPut(f); // hugetlbfs_fallocate() drops the allocation reference; the page cache keeps one
            }
        }
        if ((mode & Memfd.FALLOC_FL_KEEP_SIZE) == 0 && offset + length > inode.Size) inode.Size = offset + length;
        return SysResult.Ok();
    }

    public SysResult Lseek(TaskStruct t, int fd, long offset, int whence)
    {
        if (!TryFile(t, fd, out var of)) return SysResult.Err(Errno.EBADF);
        long basePos = whence switch { Memfd.SEEK_SET => 0, Memfd.SEEK_CUR => of.Pos, Memfd.SEEK_END => (long)of.Inode.Size, _ => -1 };
        if (basePos < 0 || basePos + offset < 0) return SysResult.Err(Errno.EINVAL);
        of.Pos = basePos + offset;
        return SysResult.Ok(of.Pos);
    }

    /// <summary>read(): from the file position, which advances by the bytes returned.</summary>
    public SysResult Read(TaskStruct t, int fd, ulong count, ContentCheck? check = null)
    {
        if (!TryFile(t, fd, out var of)) return SysResult.Err(Errno.EBADF);
        var r = ReadIter(of.Inode, (ulong)of.Pos, count, check, out ulong advanced);
        of.Pos += (long)advanced;
        return r;
    }

    /// <summary>pread(): at an explicit offset; the file position is unchanged.</summary>
    public SysResult Pread(TaskStruct t, int fd, ulong count, ulong offset, ContentCheck? check = null)
    {
        if (!TryFile(t, fd, out var of)) return SysResult.Err(Errno.EBADF);
        return ReadIter(of.Inode, offset, count, check, out _);
    }

    /// <summary>read_iter of the file; <paramref name="advanced"/> is how far ki_pos moved (the bytes returned, except where a kernel moves it on an error).</summary>
    private SysResult ReadIter(Inode inode, ulong pos, ulong count, ContentCheck? check, out ulong advanced)
    {
        if (inode.IsHugetlb) return HugetlbfsReadIter(inode, pos, count, check, out advanced);
        var r = ShmemReadIter(inode, pos, count, check);
        advanced = r.Failed ? 0 : (ulong)r.Ret;
        return r;
    }

    /// <summary>
    /// hugetlbfs_read_iter() + adjust_range_hwpoison() (v6.6+): holes read as zeros; in a poisoned folio,
    /// bytes up to the first raw poisoned 4 KiB page are copied and the read ends short; starting inside a
    /// poisoned raw page gives -EIO if nothing was copied in this call.
    /// </summary>
    private SysResult HugetlbfsReadIter(Inode inode, ulong pos, ulong count, ContentCheck? check, out ulong advanced)
    {
        var r = HugetlbfsReadFolios(inode, pos, count, check, out ulong copiedBeforeEio);
        advanced = r.Failed ? copiedBeforeEio : (ulong)r.Ret;
        return r;
    }

    private SysResult HugetlbfsReadFolios(Inode inode, ulong pos, ulong count, ContentCheck? check, out ulong copiedBeforeEio)
    {
        ulong isize = inode.Size, hsize = inode.FolioSize;
        ulong copiedTotal = 0, remaining = count;
        copiedBeforeEio = 0;
        while (remaining > 0)
        {
            if (pos >= isize) break;
            ulong index = pos / hsize, offset = pos % hsize;
            ulong nr = Math.Min(hsize, isize - index * hsize);
            if (nr <= offset) break;
            nr -= offset;
            inode.PageCache.TryGetValue(index, out var folio);
            ulong copied;
            if (folio is null) { copied = Math.Min(nr, remaining); check?.Check(null, offset, copied, copiedTotal); }
            else
            {
                ulong want = nr;
                if (folio.IsHwpoison && !ReadsAroundRawHwpoison)
                {
                    copiedBeforeEio = copiedTotal; // ki_pos moves to the poisoned folio, the call fails
                    return SysResult.Err(Errno.EIO);
                }
                if (folio.IsHwpoison)
                {
                    want = AdjustRangeHwpoison(folio, offset, nr);
                    if (want == 0) return copiedTotal > 0 ? SysResult.Ok((long)copiedTotal) : SysResult.Err(Errno.EIO);
                }
                ulong n = Math.Min(want, remaining);
                if (CopyToUserConsumesPoison(folio.PhysAddr + offset, n))
                {
                    copiedBeforeEio = copiedTotal;
                    return SysResult.Err(Errno.EIO);
                }
                check?.Check(folio, offset, n, copiedTotal);
                copied = n;
                if (copied != nr && remaining > copied) { copiedTotal += copied; return SysResult.Ok((long)copiedTotal); }
            }
            copiedTotal += copied; remaining -= copied; pos += copied;
        }
        return SysResult.Ok((long)copiedTotal);
    }

    /// <summary>
    /// The kernel's copy of file data to the user buffer (copy_folio_to_iter() / copy_page_to_iter() → copy_to_user() →
    /// copy_user_generic(): rep movs with an _ASM_EXTABLE_UA entry) loads from [pa, pa+n) in kernel mode. A hardware-poisoned
    /// line there that the kernel has not recorded yet (no PG_hwpoison / raw_hwp entry, so adjust_range_hwpoison() did not
    /// stop the read before it) raises a machine check the x86 handler cannot recover: error_context() in
    /// arch/x86/kernel/cpu/mce/severity.c finds fixup type EX_TYPE_UACCESS but is_copy_from_user() false (the faulting load's
    /// address, regs->si of the rep movs, is a kernel address), so the context is IN_KERNEL and the severity table says
    /// "Data load in unrecoverable area of kernel" (MCE_PANIC_SEVERITY; AMD: mce_severity_amd(), UC in IN_KERNEL → panic).
    /// do_machine_check() then calls mce_panic("Fatal local machine check") (LMCE; "Fatal machine check" when broadcast).
    /// Only copy_from_user() (the load from user memory) and the copy_mc_*() routines (EX_TYPE_DEFAULT_MCE_SAFE) recover
    /// in kernel mode. Returns true when the host panicked.
    /// </summary>
    internal bool CopyToUserConsumesPoison(ulong pa, ulong n)
    {
        if (Phys.FirstPoisonedLine(pa, n) is not { } bad) return false;
        KernelMachineCheckPanic(bad, "copy_to_user() of file data");
        return true;
    }

    /// <summary>A kernel-mode load of a poisoned line outside an MC-safe copy: the host panics (see <see cref="CopyToUserConsumesPoison"/>).</summary>
    internal void KernelMachineCheckPanic(ulong pa, string where)
    {
        // mce_panic() prints the bank's record first (MCi_STATUS, ADDR): the model has no bank registers, so only the address
        Log($"mce: [Hardware Error]: Machine check: Data load in unrecoverable area of kernel (ADDR {pa:x}, {where})");
        Panic("Fatal local machine check");
    }

    /// <summary>read_iter of <paramref name="inode"/> at <paramref name="pos"/> for a kernel-model caller that holds the file (a userspace agent's pread()).</summary>
    internal SysResult PreadInode(Inode inode, ulong pos, ulong count) => ReadIter(inode, pos, count, null, out _);

    /// <summary>Compares file bytes [pos, pos+len) with a check without side effects (test oracle for read loops).</summary>
    public void PeekFile(Inode inode, ulong pos, ulong len, ContentCheck check)
    {
        ulong fs = inode.FolioSize, done = 0;
        while (done < len)
        {
            ulong p = pos + done, idx = p / fs, off = p % fs, n = Math.Min(fs - off, len - done);
            inode.PageCache.TryGetValue(idx, out var f);
            check.Check(f, off, n, done);
            done += n;
        }
    }

    /// <summary>adjust_range_hwpoison(): bytes readable from offset before the first raw poisoned page.</summary>
    private static ulong AdjustRangeHwpoison(Folio folio, ulong offset, ulong bytes)
    {
        // raw_hwp_unreliable: the list is gone; treat the whole folio as poisoned (spec §1.5 [unverified])
        if (folio.Flags.Has(PageFlags.RawHwpUnreliable)) return 0;
        ulong firstPage = offset >> Units.PAGE_SHIFT;
        ulong firstBad = ulong.MaxValue;
        foreach (var raw in folio.RawHwp)
        {
            ulong idx = raw - folio.Pfn;
            if (idx >= firstPage && idx < firstBad) firstBad = idx;
        }
        if (firstBad == ulong.MaxValue) return bytes;
        ulong badOff = firstBad << Units.PAGE_SHIFT;
        return Math.Min(bytes, badOff > offset ? badOff - offset : 0);
    }

    /// <summary>shmem_file_read_iter(): 4 KiB pages; a poisoned page ends the read (-EIO if first).</summary>
    private SysResult ShmemReadIter(Inode inode, ulong pos, ulong count, ContentCheck? check)
    {
        ulong done = 0;
        while (done < count && pos < inode.Size)
        {
            ulong idx = pos >> Units.PAGE_SHIFT, off = pos & (Units.PAGE_SIZE - 1);
            ulong n = Math.Min(Math.Min(Units.PAGE_SIZE - off, count - done), inode.Size - pos);
            inode.PageCache.TryGetValue(idx, out var f);
            // shmem_get_folio() refuses a folio with PG_hwpoison (-EIO); a poisoned line the kernel does not know about is
            // loaded by copy_folio_to_iter() in kernel mode: a fatal machine check, as for hugetlbfs
            if (f is not null && f.IsHwpoison)
                return done > 0 ? SysResult.Ok((long)done) : SysResult.Err(Errno.EIO);
            if (f is not null && CopyToUserConsumesPoison(f.PhysAddr + off, n)) return SysResult.Err(Errno.EIO);
            check?.Check(f, off, n, done);
            done += n; pos += n;
        }
        return SysResult.Ok((long)done);
    }

    /// <summary>shmem_truncate_range(): drops 4 KiB page-cache folios in [start, end), unmapping them first.</summary>
    internal void TruncateShmem(Inode inode, ulong start, ulong end)
    {
        ulong first = Units.AlignUp(start, Units.PAGE_SIZE) >> Units.PAGE_SHIFT;
        ulong last = end == ulong.MaxValue ? ulong.MaxValue : end >> Units.PAGE_SHIFT;
        foreach (var idx in inode.PageCache.Keys.Where(i => i >= first && i < last).ToList())
        {
            var f = inode.PageCache[idx];
            UnmapFileFolio(inode, f);
            inode.PageCache.Remove(idx);
            FolioPut(f);
        }
    }

    /// <summary>Unmaps a file folio from every VMA of the file (unmap_mapping_range / hugetlb_unmap_file_folio).</summary>
    internal void UnmapFileFolio(Inode inode, Folio f)
    {
        ulong off = f.Index * inode.FolioSize;
        foreach (var v in inode.IMmap.ToList())
        {
            if (v.AnonVma is not null && !v.IsShared) { /* private COW copies are not the file's folio; file pages still mapped read-only are */ }
            var va = v.AddressOf(off);
            if (va is null) continue;
            ulong s = va.Value, e = Math.Min(v.End, s + inode.FolioSize);
            ForEachLeaf(v.Mm, s, e, r =>
            {
                var en = r.Entry;
                if ((en.Present || en.IsHwpoison) && f.ContainsPfn(en.Pfn)) { ZapEntry(r); MmuNotifierInvalidate(v.Mm, r.Va, r.Size); }
            });
        }
    }
}

using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault;

// userfaultfd minor faults + UFFDIO_CONTINUE, write protection (UFFDIO_WRITEPROTECT, uffd-wp bits and PTE markers),
// UFFD_FEATURE_SIGBUS and UFFD_FEATURE_EVENT_FORK (fs/userfaultfd.c, mm/userfaultfd.c, mm/hugetlb.c).
public sealed partial class Kernel
{
    /// <summary>
    /// handle_userfault(): the fault is reported to the handler (fault address: the huge page, or 4 KiB under HGM) and
    /// waits; with UFFD_FEATURE_SIGBUS the kernel answers VM_FAULT_SIGBUS instead, a plain SIGBUS (BUS_ADRERR).
    /// </summary>
    internal FaultResult HandleUserfault(Vma vma, ulong reportedAddr)
    {
        var u = vma.Uffd!;
        if ((u.Features & Userfaultfd.UFFD_FEATURE_SIGBUS) != 0) return new(FaultKind.Sigbus);
        u.Messages.Add(reportedAddr);
        return new(FaultKind.Userfault);
    }

    /// <summary>The address a hugetlb userfault reports: the huge page, 4 KiB under HGM (MADV_SPLIT).</summary>
    internal static ulong UffdFaultAddress(Vma vma, ulong va) =>
        vma.IsHgm || vma.Hstate is null ? Units.AlignDown(va, Units.PAGE_SIZE) : Units.AlignDown(va, vma.Hstate.Size);

    /// <summary>A write to a present entry that carries the uffd-wp bit in a VM_UFFD_WP VMA: a write-protect userfault.</summary>
    internal bool IsUffdWpFault(Vma vma, Pte e, bool write) =>
        write && (vma.Flags & VmFlags.VM_UFFD_WP) != 0 && e.Present && e.UffdWp;

    /// <summary>
    /// UFFDIO_CONTINUE (mfill_atomic with MFILL_ATOMIC_CONTINUE): map the page-cache folio over a registered file range
    /// that has no entry (or a uffd-wp marker), at the VMA's granule (the huge page, or 4 KiB..huge pieces under HGM).
    /// -EFAULT where the file has no folio, -EIO for a poisoned folio, -EEXIST where something is mapped.
    /// Returns the bytes mapped.
    /// </summary>
    public SysResult UffdioContinue(TaskStruct t, int fd, ulong start, ulong len)
    {
        var u = UffdOf(t, fd);
        if (u is null) return SysResult.Err(Errno.EBADF);
        var v = t.Mm.FindVma(start);
        // any registered hugetlb range (mfill_atomic_hugetlb() checks no mode); elsewhere only shmem
        if (v is null || v.Uffd != u || start + len > v.End || v.File is null) return SysResult.Err(Errno.ENOENT);
        ulong g = UffdGranule(v);
        if (!Units.IsAligned(start, g) || !Units.IsAligned(len, g) || len == 0) return SysResult.Err(Errno.EINVAL);
        var inode = v.File!;
        ulong fsize = inode.FolioSize, done = 0;
        bool w = (v.Flags & VmFlags.VM_WRITE) != 0 && v.IsShared;
        for (ulong a = start; a < start + len;)
        {
            ulong step = g;
            if (v.Hstate is { } hs && v.IsHgm)
                foreach (var size in new[] { hs.Size, Units.PMD_SIZE })
                {
                    if (size > hs.Size || !Units.IsAligned(a, size) || a + size > start + len) continue;
                    var wk = Walk(t.Mm, a);
                    if (wk.Entry.IsNone && wk.Size >= size) { step = size; break; }
                }
            ulong foff = v.FileOffset(a);
            if (!inode.PageCache.TryGetValue(foff / fsize, out var folio)) return Partial(done, Errno.EFAULT);
            if (folio.IsHwpoison) return Partial(done, Errno.EIO);
            var level = step >= Units.PUD_SIZE ? PtLevel.Pud : step >= Units.PMD_SIZE ? PtLevel.Pmd : PtLevel.Pte;
            if (v.IsHgm) SplitMarkersDownTo(t.Mm, a, level);
            var r = WalkAlloc(t.Mm, a, level);
            if (r is null) return Partial(done, Errno.EEXIST);
            if (!r.Value.Entry.IsNone && !r.Value.Entry.IsUffdWpMarker) return Partial(done, Errno.EEXIST);
            InstallLeaf(r.Value, folio, folio.Pfn + ((foff % fsize) >> Units.PAGE_SHIFT), w, false);
            done += step; a += step;
        }
        return SysResult.Ok((long)done);
    }

    private static SysResult Partial(ulong done, int errno) => done > 0 ? SysResult.Ok((long)done) : SysResult.Err(errno);

    /// <summary>
    /// UFFDIO_WRITEPROTECT (uffd_wp_range → hugetlb_change_protection / change_protection): protect sets the uffd-wp bit
    /// and clears write on present entries and installs PTE_MARKER_UFFD_WP on empty entries of file-backed ranges;
    /// unprotect clears the bit (the entry stays read-only until the next write fault) and drops the markers.
    /// </summary>
    public SysResult UffdioWriteprotect(TaskStruct t, int fd, ulong start, ulong len, bool protect)
    {
        var u = UffdOf(t, fd);
        if (u is null) return SysResult.Err(Errno.EBADF);
        var vmas = t.Mm.Vmas.Where(v => v.Start < start + len && v.End > start).ToList();
        if (vmas.Count == 0 || vmas.Any(v => v.Uffd != u || (v.Flags & VmFlags.VM_UFFD_WP) == 0)) return SysResult.Err(Errno.ENOENT);
        foreach (var v in vmas)
        {
            ulong s = Math.Max(start, v.Start), e = Math.Min(start + len, v.End);
            ulong g = v.Hstate is { } h && !v.IsHgm ? h.Size : Units.PAGE_SIZE;
            for (ulong a = s; a < e;)
            {
                var r = Walk(t.Mm, a);
                var en = r.Entry;
                ulong next = Math.Min(e, r.Va + Math.Max(r.Size, 1));
                if (r.Shift > (v.Hstate?.Shift ?? Units.PAGE_SHIFT) && en.IsNone)
                {
                    // no table below this level yet: an empty hugetlb-level entry
                    if (protect && v.File is not null)
                    {
                        var leaf = WalkAlloc(t.Mm, a, g >= Units.PUD_SIZE ? PtLevel.Pud : g >= Units.PMD_SIZE ? PtLevel.Pmd : PtLevel.Pte);
                        if (leaf is { } lr && lr.Entry.IsNone) { lr.Table.Set(lr.Index, Pte.UffdWpMarker()); Stats.EntriesWritten++; }
                    }
                    a = Units.AlignDown(a, g) + g;
                    continue;
                }
                if (en.Present && (r.Level == PtLevel.Pte || en.Huge)) { r.Table.Set(r.Index, en.WithUffdWp(protect)); Stats.EntriesWritten++; }
                else if (en.IsNone && protect && v.File is not null) { r.Table.Set(r.Index, Pte.UffdWpMarker()); Stats.EntriesWritten++; }
                else if (en.IsUffdWpMarker && !protect) { r.Table.Set(r.Index, Pte.None); Stats.EntriesWritten++; }
                a = next;
            }
        }
        return SysResult.Ok();
    }

    /// <summary>
    /// dup_userfaultfd() at fork: with UFFD_FEATURE_EVENT_FORK the child's VMAs stay registered (to a new context with
    /// the same features, handed to the handler in a UFFD_EVENT_FORK message) and, with VM_UFFD_WP, their page tables are
    /// copied entry by entry, uffd-wp bits and markers included (vma_needs_copy()); without it the registration is dropped.
    /// </summary>
    internal void DupUserfaultfd(Vma parent, Vma child, Dictionary<Userfaultfd, Userfaultfd> ctxs)
    {
        if (parent.Uffd is not { } u || (u.Features & Userfaultfd.UFFD_FEATURE_EVENT_FORK) == 0) return;
        if (!ctxs.TryGetValue(u, out var cu)) ctxs[u] = cu = new Userfaultfd(NewUffdId()) { Features = u.Features, ApiDone = true };
        child.Uffd = cu;
        child.Flags |= parent.Flags & (VmFlags.VM_UFFD_MISSING | VmFlags.VM_UFFD_MINOR | VmFlags.VM_UFFD_WP);
        u.Messages.Add(0); // the UFFD_EVENT_FORK message
        if ((parent.Flags & VmFlags.VM_UFFD_WP) == 0 || parent.AnonVma is not null) return; // private: copied anyway
        ForEachLeaf(parent.Mm, parent.Start, parent.End, r =>
        {
            var e = r.Entry;
            if (e.IsNone) return;
            var dst = WalkAlloc(child.Mm, r.Va, r.Level);
            if (dst is null) return;
            dst.Value.Table.Set(dst.Value.Index, e);
            Stats.EntriesWritten++;
            if (e.Present && Phys.FolioOf(e.Pfn) is { } f) AddRmap(f, e.Pfn, r.Size, +1);
        });
    }
}

using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault;

// mm/userfaultfd.c, fs/userfaultfd.c: the parts hugetlb post-copy and poison use.
public sealed partial class Kernel
{
    public const int UFFDIO_REGISTER_MODE_MISSING = 1, UFFDIO_REGISTER_MODE_WP = 2, UFFDIO_REGISTER_MODE_MINOR = 4;

    /// <summary>userfaultfd() + UFFDIO_API with the requested features.</summary>
    public SysResult UserfaultfdCreate(TaskStruct t, ulong features)
    {
        if ((features & ~UffdFeaturesKnown) != 0) return SysResult.Err(Errno.EINVAL); // userfaultfd_api(): unknown feature bits
        var ctx = new Userfaultfd(NewUffdId()) { Features = features, ApiDone = true };
        var inode = new Inode(NewIno(), FsKind.Tmpfs, "[userfaultfd]", null) { Internal = true, Unlinked = true };
        return SysResult.Ok(AllocFd(t, new OpenFile(inode) { Uffd = ctx }));
    }

    private Userfaultfd? UffdOf(TaskStruct t, int fd) => t.Fds.TryGetValue(fd, out var of) ? of.Uffd : null;

    /// <summary>UFFDIO_REGISTER: hugetlb ranges must be huge-page aligned.</summary>
    public SysResult UffdioRegister(TaskStruct t, int fd, ulong start, ulong len, int mode)
    {
        var u = UffdOf(t, fd);
        if (u is null) return SysResult.Err(Errno.EBADF);
        ulong end = start + len;
        var vmas = t.Mm.Vmas.Where(v => v.Start < end && v.End > start).ToList();
        if (vmas.Count == 0) return SysResult.Err(Errno.EINVAL);
        foreach (var v in vmas)
        {
            if (v.Hstate is { } h && (!Units.IsAligned(start, h.Size) || !Units.IsAligned(len, h.Size))) return SysResult.Err(Errno.EINVAL);
            if ((mode & UFFDIO_REGISTER_MODE_MINOR) != 0 && v.File is null) return SysResult.Err(Errno.EINVAL);
        }
        foreach (var v in vmas)
        {
            v.Uffd = u;
            if ((mode & UFFDIO_REGISTER_MODE_MISSING) != 0) v.Flags |= VmFlags.VM_UFFD_MISSING;
            if ((mode & UFFDIO_REGISTER_MODE_MINOR) != 0) v.Flags |= VmFlags.VM_UFFD_MINOR;
            if ((mode & UFFDIO_REGISTER_MODE_WP) != 0) v.Flags |= VmFlags.VM_UFFD_WP;
        }
        return SysResult.Ok();
    }

    /// <summary>Granule of UFFDIO_COPY/POISON/CONTINUE in a VMA: the huge page size, or 4 KiB where HGM allows it.</summary>
    private static ulong UffdGranule(Vma v) => v.Hstate is { } h && !v.IsHgm ? h.Size : Units.PAGE_SIZE;

    /// <summary>UFFDIO_COPY: install new pages with the given content (seed 0 = zero page) where nothing is mapped; returns bytes copied.</summary>
    public SysResult UffdioCopy(TaskStruct t, int fd, ulong dst, ulong len, ulong seed, long patternOffset)
    {
        var u = UffdOf(t, fd);
        if (u is null) return SysResult.Err(Errno.EBADF);
        var v = t.Mm.FindVma(dst);
        if (v is null || v.Uffd != u || dst + len > v.End) return SysResult.Err(Errno.ENOENT);
        ulong g = UffdGranule(v);
        if (!Units.IsAligned(dst, g) || !Units.IsAligned(len, g) || len == 0) return SysResult.Err(Errno.EINVAL);
        ulong done = 0;
        for (ulong a = dst; a < dst + len; )
        {
            ulong step = g;
            if (v.Hstate is { } hs && v.IsHgm)
            {
                // HGM: install the largest aligned piece that fits (1G, 2M, 4K), as the hugetlb_pte walk would
                foreach (var size in new[] { hs.Size, Units.PMD_SIZE })
                {
                    if (size > hs.Size || !Units.IsAligned(a, size) || a + size > dst + len) continue;
                    var w = Walk(t.Mm, a);
                    if (w.Entry.IsNone && w.Size >= size) { step = size; break; }
                }
            }
            var r = Walk(t.Mm, a);
            // huge_pte_none_mostly(): a poison marker counts as empty, UFFDIO_COPY replaces it (21c on 6.12)
            if (!r.Entry.IsNone && !r.Entry.IsPoisonMarker && !r.Entry.IsUffdWpMarker && r.Shift <= (v.Hstate?.Shift ?? Units.PAGE_SHIFT)) return done > 0 ? SysResult.Ok((long)done) : SysResult.Err(Errno.EEXIST);
            int res = MfillAtomicPte(t, v, a, step, seed, patternOffset + (long)(a - dst));
            if (res != 0) return done > 0 ? SysResult.Ok((long)done) : SysResult.Err(-res);
            done += step;
            a += step;
        }
        return SysResult.Ok((long)done);
    }

    /// <summary>mfill_atomic_hugetlb()/mfill_atomic_pte_copy() for one granule.</summary>
    private int MfillAtomicPte(TaskStruct t, Vma v, ulong a, ulong g, ulong seed, long po)
    {
        if (v.Hstate is { } h)
        {
            ulong hva = Units.AlignDown(a, h.Size);
            ulong idx = v.FileOffset(hva) >> h.Shift;
            var inode = v.File!;
            Folio? folio;
            if (v.IsShared && inode.PageCache.TryGetValue(idx, out var existing))
            {
                if (g == h.Size) return -Errno.EEXIST;
                folio = existing;
            }
            else
            {
                bool resv = v.IsShared ? inode.SharedResv.Remove(idx) : v.PrivateResv?.Remove(idx) ?? false;
                folio = AllocHugetlbFolio(h, resv);
                if (folio is null) return -Errno.ENOMEM;
                folio.EnsureContent().Clear();
                if (v.IsShared) { HugetlbAddToPageCache(inode, idx, folio); folio.RefCount--; }
                else { folio.Flags = folio.Flags.With(PageFlags.PG_anon); folio.AnonVma = v.AnonVma; folio.Index = idx; folio.RefCount--; }
            }
            if (seed != ContentTag.Zero) folio.EnsureContent().Write(a - hva, g, seed, po);
            Stats.BytesCopied += (long)g;
            var level = g == Units.PUD_SIZE ? PtLevel.Pud : g == Units.PMD_SIZE ? PtLevel.Pmd : PtLevel.Pte;
            var r = WalkAlloc(t.Mm, a, level);
            if (r is null) return -Errno.ENOMEM;
            bool w = (v.Flags & VmFlags.VM_WRITE) != 0;
            InstallLeaf(r.Value, folio, folio.Pfn + ((a - hva) >> Units.PAGE_SHIFT), w, w && v.IsShared);
            return 0;
        }
        var f = Phys.AllocFolio(0);
        if (f is null) return -Errno.ENOMEM;
        if (seed != ContentTag.Zero) f.EnsureContent().Write(0, g, seed, po);
        if (v.File is { } ino && v.IsShared) { f.Mapping = ino; f.Index = v.FileOffset(a) >> Units.PAGE_SHIFT; f.RefCount = 1; ino.PageCache[f.Index] = f; }
        else { f.Flags = f.Flags.With(PageFlags.PG_anon); f.AnonVma = v.AnonVma ??= NewAnonVma(v); }
        var rr = WalkAlloc(t.Mm, a, PtLevel.Pte);
        if (rr is null) return -Errno.ENOMEM;
        InstallLeaf(rr.Value, f, f.Pfn, (v.Flags & VmFlags.VM_WRITE) != 0, true);
        return 0;
    }

    /// <summary>
    /// UFFDIO_POISON (v6.6+): install PTE_MARKER_POISONED entries (per huge page on hugetlb, or 4 KiB under
    /// HGM); needs UFFD_FEATURE_POISON. No page is consumed and HardwareCorrupted is unchanged.
    /// </summary>
    public SysResult UffdioPoison(TaskStruct t, int fd, ulong start, ulong len)
    {
        var u = UffdOf(t, fd);
        if (u is null) return SysResult.Err(Errno.EBADF);
        if ((u.Features & Userfaultfd.UFFD_FEATURE_POISON) == 0) return SysResult.Err(Errno.EINVAL);
        var v = t.Mm.FindVma(start);
        if (v is null || v.Uffd != u || start + len > v.End) return SysResult.Err(Errno.ENOENT);
        ulong g = UffdGranule(v);
        if (!Units.IsAligned(start, g) || !Units.IsAligned(len, g) || len == 0) return SysResult.Err(Errno.EINVAL);
        ulong done = 0;
        var level = g == Units.PUD_SIZE ? PtLevel.Pud : g == Units.PMD_SIZE ? PtLevel.Pmd : PtLevel.Pte;
        for (ulong a = start; a < start + len; a += g)
        {
            var r = WalkAlloc(t.Mm, a, level);
            if (r is null) return done > 0 ? SysResult.Ok((long)done) : SysResult.Err(Errno.ENOMEM);
            if (!r.Value.Entry.IsNone) return done > 0 ? SysResult.Ok((long)done) : SysResult.Err(Errno.EEXIST);
            r.Value.Table.Set(r.Value.Index, Pte.PoisonMarker());
            Stats.EntriesWritten++;
            done += g;
        }
        return SysResult.Ok((long)done);
    }
}

using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault.Policies;

/// <summary>
/// Option 3 of the design debate, as HugeFault.Recovery does it on Linux 6.6+: the kernel does what mainline does,
/// and the owning process moves its data out by itself. On the SIGBUS it reads every good 4 KiB page of the
/// poisoned huge page with pread() from the hugetlbfs file (hugetlbfs_read_iter() + adjust_range_hwpoison(): only
/// poisoned raw pages fail with EIO) into a fresh tmpfs file (2 MiB THP folios), maps that over its range and marks
/// each bad 4 KiB with UFFDIO_POISON. The hugetlbfs file is left alone: punching the folio out would not free it
/// (memory_failure() keeps its reference on 6.12, conformance case 17) and would zero the data of anyone else who
/// maps the file. So the poisoned huge page stays allocated and the copy stays as extra memory. When another
/// process maps or holds the file, the agent refuses (replacing one mapper's view alone splits the shared memory):
/// everyone keeps mainline's behaviour. Counts the extra memory, the bytes copied, and the time the range was
/// inaccessible at <c>bandwidth_gbps</c> (default 10 GB/s). The copy is the kernel's read path, so a line of the page
/// that is bad in hardware but not yet reported panics the host (copy_to_user() is not machine-check safe on x86:
/// Kernel.CopyToUserConsumesPoison), as it would under HugeFault.Recovery on a real host.
/// </summary>
public sealed class UserspaceMigratePolicy : RecoveryPolicyBase
{
    /// <summary>This policy's name, summary, parameters and provenance (see <see cref="PolicyDescriptor"/>).</summary>
    public static readonly PolicyDescriptor Descriptor = new("userspace-migrate",
        "mainline, then the VMM preads the good data into tmpfs, remaps, UFFDIO_POISONs the bad 4 KiB",
        p => new UserspaceMigratePolicy(p),
        Parameters: [new("bandwidth_gbps", "10", "copy bandwidth, GB/s (time the range is inaccessible)", ParameterKind.PositiveNumber)]);

    private readonly double _bandwidth;

    public UserspaceMigratePolicy(IReadOnlyDictionary<string, string> parameters) : base(parameters)
        => _bandwidth = parameters.TryGetValue("bandwidth_gbps", out var b) && double.TryParse(b, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0 ? v : 10.0;

    public override string Name => Descriptor.Name;

    public override (MfResult, string) HandleInUseHugetlb(Kernel k, MfContext ctx)
    {
        var folio = ctx.Folio;
        var inode = folio.Mapping;
        var owner = k.Current is { Alive: true } cur && cur.Sigbus == SigbusDisposition.Handle ? cur : null;
        var maps = k.FolioMappings(folio, onlyMapped: true);
        var res = base.HandleInUseHugetlb(k, ctx); // mainline: unmap everywhere, SIGBUS lsb 30
        if (inode is null || folio.IsAnon || maps.Count == 0) return res;
        // before 6.6 a read of a poisoned hugetlb folio fails as a whole (38c1ddbde6c6) and UFFDIO_POISON does not exist:
        // HugeFault.Recovery refuses at Protect, so the process keeps mainline's behaviour
        if (!k.ReadsAroundRawHwpoison || (k.UffdFeaturesKnown & Userfaultfd.UFFD_FEATURE_POISON) == 0)
        {
            k.Act($"refused: Linux {k.Config.KernelVersion} cannot read around poisoned raw pages nor UFFDIO_POISON (both 6.6)");
            return res;
        }
        owner ??= maps.Select(m => k.Tasks.FirstOrDefault(t => t.Alive && t.Mm == m.Vma.Mm && t.Sigbus == SigbusDisposition.Handle)).FirstOrDefault(t => t is not null);
        if (owner is null) return res;
        var mine = maps.Where(m => m.Vma.Mm == owner.Mm).ToList();
        if (mine.Count == 0) return res;
        // the agent's /proc check (HugeFault.Recovery scan.c): another process mapping or holding the file -> refuse
        var other = inode.IMmap.Select(v => v.Mm).FirstOrDefault(m => m != owner.Mm)
            ?? k.Tasks.Where(t => t.Alive && t.Mm != owner.Mm && t.Fds.Values.Any(f => f.Inode == inode)).Select(t => t.Mm).FirstOrDefault();
        if (other is not null)
        {
            k.Act($"{owner.Comm}: refused: mm {other.Id} also maps or holds {inode.Name}; replacing only this mapping would split the shared memory");
            return res;
        }
        Migrate(k, owner, folio, inode, mine);
        return res;
    }

    private void Migrate(Kernel k, TaskStruct owner, Folio folio, Inode inode, List<(Vma Vma, ulong Hva)> mine)
    {
        ulong size = folio.Size;
        // 1. a fresh tmpfs file with 2 MiB folios, filled with pread() of every good 4 KiB page
        var tmp = new Inode(k.NewIno(), FsKind.Tmpfs, "memfd:hugefault-rescue", null) { Unlinked = true, Internal = true, Size = size, ShmemFolioOrder = Units.PMD_SHIFT - Units.PAGE_SHIFT };
        k.AddInode(tmp);
        ulong copied = 0;
        ulong fileBase = folio.Index * inode.FolioSize;
        var badPages = new List<ulong>();
        // pread() through the kernel's hugetlbfs_read_iter(): each call returns the bytes up to the next raw poisoned page
        // (adjust_range_hwpoison()), and a call starting on one fails with EIO (the agent skips that 4 KiB). The kernel's
        // copy_to_user() of a line that is bad in hardware but not yet reported is a fatal machine check in kernel mode
        // (Kernel.CopyToUserConsumesPoison): the host panics and the rescue ends with it.
        for (ulong off = 0; off < size; )
        {
            var r = k.PreadInode(inode, fileBase + off, size - off);
            if (k.Panicked) { k.Act($"{owner.Comm}: pread() of {inode.Name}+{Units.Hex(fileBase + off)} consumed a poisoned line in the kernel's copy: host panic"); return; }
            if (r.Failed || r.Ret <= 0) { badPages.Add(off); off += Units.PAGE_SIZE; continue; }
            ulong end = off + Units.AlignDown((ulong)r.Ret, Units.PAGE_SIZE);
            if (end == off) end = off + Units.PAGE_SIZE;
            // the bytes read, one tmpfs folio at a time (a run of good pages, not one 4 KiB at a time)
            while (off < end)
            {
                ulong idx = off >> tmp.FolioShift;
                ulong runEnd = Math.Min(end, Units.AlignDown(off, tmp.FolioSize) + tmp.FolioSize);
                if (!tmp.PageCache.TryGetValue(idx, out var tf))
                {
                    tf = k.Phys.AllocFolio(tmp.ShmemFolioOrder);
                    if (tf is null) { k.Act("rescue copy failed: out of memory"); return; }
                    tf.Mapping = tmp; tf.Index = idx; tf.RefCount = 1;
                    tmp.PageCache[idx] = tf;
                    k.Stats.AddExtra((long)tf.Size);
                }
                ulong line0 = (off & (tmp.FolioSize - 1)) >> Units.CACHELINE_SHIFT;
                if (folio.Content is { } src)
                    tf.EnsureContent().CopyFrom(src, (uint)(off >> Units.CACHELINE_SHIFT), (uint)line0, (uint)((runEnd - off) >> Units.CACHELINE_SHIFT));
                copied += runEnd - off;
                off = runEnd;
            }
        }
        k.Stats.BytesCopied += (long)copied; k.Stats.PagesCopied += (long)(copied >> Units.PAGE_SHIFT);
        long ns = (long)(copied / (_bandwidth * 1e9) * 1e9);
        k.Stats.InaccessibleNs += ns;
        k.Act($"{owner.Comm}: pread() {Units.Size(copied)} of good data ({badPages.Count} x 4K EIO) from {inode.Name} into tmpfs; range inaccessible for {ns / 1e6:0.###} ms at {_bandwidth} GB/s");
        // 2. a tmpfs mapping with UFFDIO_POISON markers on the bad 4 KiB, mremap(MREMAP_FIXED)d over each of the owner's ranges
        //    mremap_to() first do_munmap()s the target: the hugetlb range goes as an munmap would take it (its unconsumed
        //    MAP_PRIVATE reservations back: hugetlb_vm_op_close(); remove_vma() fput()s vm_file, so the last reference to
        //    a closed, unlinked file evicts it: hugetlbfs_evict_inode() -> remove_inode_hugepages()). Keeping the old VMA
        //    object and only retargeting it left the file referenced by nobody yet never evicted: its good folios stayed
        //    allocated after every task exited (long property mode, seed 8Ng-gM8DcXDJ).
        foreach (var (vma, hva) in mine)
        {
            var mm = vma.Mm;
            var copy = new Vma(mm, hva, hva + size, (vma.Flags & ~(VmFlags.VM_HUGETLB | VmFlags.VM_HUGETLB_HGM | VmFlags.VM_NORESERVE)) | VmFlags.VM_SHARED, tmp, 0)
            { Name = vma.Name, NameBase = vma.NameBase, Uffd = vma.Uffd };
            k.UnmapVmaRange(k.SplitVmaRange(vma, hva, hva + size), hva, hva + size);
            Kernel.VmaLink(copy);
            foreach (var off in badPages) k.PoisonSubpageMapping(mm, hva + off, 0, marker: true);
            k.Act($"{owner.Comm}: UFFDIO_POISON on {badPages.Count} x 4K of a tmpfs mapping, mremap(MREMAP_FIXED) over {copy.Name}+{Units.Hex(hva - copy.NameBase)}");
        }
        // 3. the poisoned folio stays in the hugetlbfs page cache with memory_failure()'s reference: not freed, and
        //    the tmpfs copy stays as extra memory (no fallocate(PUNCH_HOLE): it would free nothing and zero other users)
    }
}

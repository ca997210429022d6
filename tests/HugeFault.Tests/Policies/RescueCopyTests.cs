using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault.Tests.Policies;

/// <summary>
/// What the property shadow (Properties/ContentShadow) relies on when a policy moves a range: the data stays where it
/// was written. Found as shadow gaps by the long property mode (issue 12 seeds 50M3Vl0bd4zJ, 8MeOas97JnxJ,
/// 5DhksjwqqdsI): the model was right, the shadow expected zeros; these pin the model side down.
/// </summary>
public class RescueCopyTests
{
    private const int RW = Mman.PROT_READ | Mman.PROT_WRITE;
    private const ulong H = 2 * Units.MiB;

    /// <summary>
    /// userspace-migrate: the agent pread()s the poisoned page's good 4 KiB pages into tmpfs (hugetlbfs_read_iter() stops at
    /// a raw poisoned page: adjust_range_hwpoison()) and maps the copy over the range: every good line reads back what
    /// was written at its own offset, the poisoned 4 KiB is a UFFDIO_POISON marker, and the copy holds zeros there.
    /// </summary>
    [Fact]
    public void The_rescue_copy_holds_every_good_line_at_its_own_offset_and_zeros_in_the_poisoned_4K()
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 2, Policy = "userspace-migrate" });
        var t = k.Spawn("A");
        int fd = (int)k.MemfdCreate(t, "vm", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_2MB).Ret;
        Assert.Equal(0, k.Ftruncate(t, fd, (long)H).Ret);
        ulong va = (ulong)k.Mmap(t, H, RW, Mman.MAP_SHARED, fd, 0, "m").Ret;
        const ulong bad = 0xe4000; // the 4 KiB page the error hits (seed 50M3Vl0bd4zJ: 0xe4fc0)
        Assert.Equal("ok", k.Access(t, va, H, write: true, seed: 7).Outcome);
        ulong pa = (k.Walk(t.Mm, va).Entry.Pfn << Units.PAGE_SHIFT) + bad + 0xfc0;
        k.Phys.PoisonLine(pa, PoisonKind.Permanent);

        Assert.StartsWith("SIGBUS", k.Access(t, va + bad + 0xfc0, Units.CACHELINE, write: false).Outcome); // consumed: the rescue runs

        var v = t.Mm.FindVma(va)!;
        Assert.False(v.IsHugetlb);
        Assert.Equal(FsKind.Tmpfs, v.File!.Kind);
        foreach (ulong off in new ulong[] { 0, 0x1000, bad - 0x1000, bad + 0x1000, 0xf9000, H - Units.PAGE_SIZE })
        {
            var check = new ContentCheck(7, (long)off);
            Assert.Equal("ok", k.Access(t, va + off, Units.PAGE_SIZE, write: false, check: check).Outcome);
            Assert.Equal((64, 0), (check.LinesChecked, check.Mismatches));
        }
        Assert.True(k.Walk(t.Mm, va + bad).Entry.IsPoisonMarker);
        Assert.StartsWith("SIGBUS", k.Access(t, va + bad, 8, write: false).Outcome);
        var copy = v.File.PageCache[0];
        for (uint l = (uint)(bad >> Units.CACHELINE_SHIFT); l < (uint)((bad + Units.PAGE_SIZE) >> Units.CACHELINE_SHIFT); l++)
            Assert.Equal(ContentTag.Zero, copy.Content!.Tag(l));
    }

    /// <summary>
    /// vma-convert splits a private 2 MiB-page mapping: the converted 2 MiB keeps the mapping's name at 4 KiB pages, the
    /// other half stays hugetlb. fork (dup_mmap(), VMAs in address order) and fork again: the grandchild's hugetlb half
    /// holds the parent's data up to its last line (seed 5DhksjwqqdsI).
    /// </summary>
    [Fact]
    public void After_vma_convert_splits_a_private_mapping_a_grandchild_sees_all_of_the_hugetlb_half()
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 4, Policy = "vma-convert" });
        var a = k.Spawn("A");
        ulong va = (ulong)k.Mmap(a, 2 * H, RW, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_HUGETLB | Mman.MAP_HUGE_2MB, -1, 0, "m").Ret;
        Assert.Equal("ok", k.Access(a, va, 2 * H, write: true, seed: 9).Outcome);
        ulong pa = (k.Walk(a.Mm, va).Entry.Pfn << Units.PAGE_SHIFT) + 0x59440;
        k.Phys.PoisonLine(pa, PoisonKind.Permanent);
        k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa); // scrubbed: the first 2 MiB leaves hugetlb
        Assert.Equal(1, k.Stats.HugePagesConverted);
        Assert.False(a.Mm.FindVma(va)!.IsHugetlb);
        Assert.True(a.Mm.FindVma(va + H)!.IsHugetlb);

        var c = k.Fork(a, "C");
        var g = k.Fork(c, "G");

        foreach (var task in new[] { a, c, g })
        {
            var check = new ContentCheck(9, (long)H);
            Assert.Equal("ok", k.Access(task, va + H, H, write: false, check: check).Outcome);
            Assert.Equal((long)(H >> Units.CACHELINE_SHIFT), check.LinesChecked);
            Assert.Equal(0, check.Mismatches);
        }
    }

    /// <summary>
    /// The rescue copy is mapped over the range with mremap(MREMAP_FIXED): mremap_to() do_munmap()s the target first, so
    /// the hugetlb range goes as munmap takes it. Its unconsumed MAP_PRIVATE reservation comes back
    /// (hugetlb_vm_op_close()), and the fput() of the last reference to the closed memfd evicts it
    /// (hugetlbfs_evict_inode(): remove_inode_hugepages()): the good folio it held goes back to the pool, the poisoned
    /// one stays held by memory_failure(). Long property mode, seed 8Ng-gM8DcXDJ: the file was never evicted.
    /// </summary>
    [Fact]
    public void Mapping_the_rescue_copy_over_the_range_releases_the_hugetlb_mapping_as_munmap_would()
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 4, Policy = "userspace-migrate" });
        var t = k.Spawn("A");
        int fd = (int)k.MemfdCreate(t, "vm", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_2MB).Ret;
        Assert.Equal(0, k.Ftruncate(t, fd, (long)(2 * H)).Ret);
        Assert.Equal(0, k.Fallocate(t, fd, 0, 0, 2 * H).Ret);
        ulong va = (ulong)k.Mmap(t, H, RW, Mman.MAP_PRIVATE, fd, 0, "p").Ret;
        var inode = t.Fds[fd].Inode;
        Assert.Equal("ok", k.Access(t, va, 64, write: false).Outcome);
        var good = inode.PageCache[1];
        Assert.Equal((2, 1), (k.H2M.free_huge_pages, k.H2M.resv_huge_pages));
        Assert.Equal(0, k.Close(t, fd).Ret);
        ulong pa = (k.Walk(t.Mm, va).Entry.Pfn << Units.PAGE_SHIFT) + 0x100;
        k.Phys.PoisonLine(pa, PoisonKind.Permanent);

        k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);

        Assert.Equal(FsKind.Tmpfs, t.Mm.FindVma(va)!.File!.Kind);
        Assert.Empty(inode.IMmap);
        Assert.Equal(0, inode.PageCache.Count);
        Assert.True(good.Flags.Has(PageFlags.HugetlbFreed), "the memfd's unmapped good folio was not freed when its last reference went");
        Assert.Equal((3, 0), (k.H2M.free_huge_pages, k.H2M.resv_huge_pages));
        k.DoExit(t, "exit()");
        Assert.Equal(0, k.H2M.resv_huge_pages);
    }
}

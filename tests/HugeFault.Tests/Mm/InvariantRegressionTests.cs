using HugeFault.Mm;

namespace HugeFault.Tests.Mm;

/// <summary>
/// Minimal reproductions of the invariant violations the property tests found (Properties/), kept as examples
/// so each stays fixed. Each name says what must hold.
/// </summary>
public class InvariantRegressionTests
{
    private const int RW = Mman.PROT_READ | Mman.PROT_WRITE;
    private const ulong H = 2 * Units.MiB;

    [Fact]
    public void Soft_offlining_a_4K_anonymous_page_keeps_the_old_page_off_the_allocator()
    {
        var k = new Kernel(new KernelConfig());
        var t = k.Spawn("A");
        ulong va = (ulong)k.Mmap(t, H, RW, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS, -1, 0, "a").Ret;
        Assert.Equal("ok", k.Access(t, va + 0x6000, Units.PAGE_SIZE, write: true, seed: 3).Outcome);
        ulong pfn = k.Walk(t.Mm, va + 0x6000).Entry.Pfn;

        Assert.Equal(0, k.Madvise(t, va + 0x6000, Units.PAGE_SIZE, Mman.MADV_SOFT_OFFLINE).Ret);

        Assert.True(k.Phys.IsRawHwpoison(pfn));
        Assert.False(k.Phys.IsFreePfn(pfn), "the soft-offlined page went back to the buddy allocator");
        Assert.NotEqual(pfn, k.Walk(t.Mm, va + 0x6000).Entry.Pfn);
        Assert.Equal(1, k.NumPoisonedPages);
        var check = new ContentCheck(3, 0);
        Assert.Equal("ok", k.Access(t, va + 0x6000, Units.PAGE_SIZE, write: false, check: check).Outcome);
        Assert.Equal((64, 0), (check.LinesChecked, check.Mismatches)); // the content moved with the page
    }

    [Fact]
    public void Soft_offlining_a_surplus_hugetlb_page_quarantines_the_raw_page_when_the_old_folio_is_dissolved()
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 1, Overcommit2M = 2 });
        var t = k.Spawn("A");
        ulong va = (ulong)k.Mmap(t, H, RW, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_HUGETLB | Mman.MAP_HUGE_2MB, -1, 0, "a").Ret;
        k.SetNrHugepages(k.H2M, 0); // the reserved page cannot go: it stays, counted as surplus
        Assert.Equal((1, 1), (k.H2M.nr_huge_pages, k.H2M.surplus_huge_pages));
        Assert.Equal("ok", k.Access(t, va, 8, write: true, seed: 5).Outcome);
        ulong pfn = k.Walk(t.Mm, va).Entry.Pfn + 0x12;

        Assert.Equal(0, k.Madvise(t, va + 0x12000, Units.PAGE_SIZE, Mman.MADV_SOFT_OFFLINE).Ret);

        Assert.True(k.Phys.IsRawHwpoison(pfn), "the offlined raw page is not quarantined");
        Assert.False(k.Phys.IsFreePfn(pfn), "the offlined raw page went back to the buddy allocator");
        Assert.Equal(1, k.NumPoisonedPages);
    }

    [Fact]
    public void A_page_table_page_with_PG_hwpoison_is_quarantined_when_it_is_freed()
    {
        var k = new Kernel(new KernelConfig());
        var t = k.Spawn("A");
        ulong va = (ulong)k.Mmap(t, H, RW, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS, -1, 0, "a").Ret;
        k.Access(t, va, 8, write: true, seed: 1);
        ulong pte = k.Walk(t.Mm, va).Table.Pfn; // the PTE table mapping va
        k.Phys.PoisonLine(pte << Units.PAGE_SHIFT, PoisonKind.Permanent);
        k.MemoryFailure(pte, MfFlags.None); // the scrubber finds it
        long counted = k.NumPoisonedPages;

        Assert.Equal(0, k.Munmap(t, va, H).Ret); // frees the now empty PTE table

        Assert.False(k.Phys.IsFreePfn(pte), "a poisoned page-table page went back to the buddy allocator");
        Assert.True(counted == 0 || k.Phys.IsRawHwpoison(pte), "a counted poisoned page was forgotten when its table was freed");
    }

    [Fact]
    public void Unpoisoning_a_quarantined_page_gives_it_back_to_the_allocator()
    {
        var k = new Kernel(new KernelConfig { HugePages1G = 2 });
        var t = k.Spawn("A");
        ulong va = (ulong)k.Mmap(t, Units.GiB, RW, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_HUGETLB | Mman.MAP_HUGE_1GB, -1, 0, "a").Ret;
        k.Access(t, va, 8, write: true, seed: 1);
        ulong pfn = k.Walk(t.Mm, va).Entry.Pfn + 0x36f;
        Assert.Equal(0, k.Madvise(t, va + 0x36f000, Units.PAGE_SIZE, Mman.MADV_HWPOISON).Ret); // anon: unmapped, dissolved, raw page quarantined
        Assert.True(k.Phys.IsRawHwpoison(pfn));
        ulong free = k.Phys.FreePages;

        Assert.Equal(0, k.UnpoisonMemory(pfn)); // simulated errors only: allowed

        Assert.Equal(0, k.NumPoisonedPages);
        Assert.True(k.Phys.IsFreePfn(pfn), "the unpoisoned page was lost: neither free nor allocated");
        Assert.Equal(free + 1, k.Phys.FreePages);
    }

    [Fact]
    public void A_COW_fault_that_finds_no_page_keeps_the_private_reservation_for_later()
    {
        // the only free 1 GiB page backs the private mapping's reservation, is poisoned and cannot be dissolved;
        // the COW fault gets SIGBUS and must not lose the reservation (resv_huge_pages would leak forever)
        var k = new Kernel(new KernelConfig { HugePages1G = 2 });
        var t = k.Spawn("A");
        int fd = (int)k.MemfdCreate(t, "m", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        k.Ftruncate(t, fd, (long)(2 * Units.GiB));
        ulong va = (ulong)k.Mmap(t, Units.GiB, RW, Mman.MAP_PRIVATE, fd, Units.GiB, "p").Ret;
        Assert.Equal(0, k.Fallocate(t, fd, 0, Units.GiB, Units.GiB).Ret);
        Assert.Equal("ok", k.Access(t, va, 8, write: false).Outcome); // maps the file's page read-only
        var spare = Assert.Single(k.H1G.FreeList);
        k.Phys.PoisonLine(spare.PhysAddr + 0x1000, PoisonKind.Permanent);
        k.MemoryFailure(spare.Pfn + 1, MfFlags.None); // cannot be dissolved: it backs the reservation
        Assert.Equal(1, k.H1G.resv_huge_pages);

        Assert.Equal("SIGBUS BUS_ADRERR", k.Access(t, va, 8, write: true, seed: 1).Outcome);

        Assert.Equal(1, k.H1G.resv_huge_pages);
        Assert.Single(t.Mm.FindVma(va)!.PrivateResv!);
        k.Munmap(t, va, Units.GiB);
        Assert.Equal(0, k.H1G.resv_huge_pages);
    }

    [Fact]
    public void Exiting_frees_every_page_table_page_including_the_PGD()
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 2 });
        var t = k.Spawn("A");
        ulong va = (ulong)k.Mmap(t, 2 * H, RW, Mman.MAP_SHARED | Mman.MAP_ANONYMOUS | Mman.MAP_HUGETLB, -1, 0, "a").Ret;
        k.Access(t, va, 2 * H, write: true, seed: 1);
        var c = k.Fork(t, "B");
        Assert.True(k.Stats.TablePagesNow >= 2);

        k.DoExit(c, "exit()");
        k.DoExit(t, "exit()");

        Assert.Equal(0, k.Stats.TablePagesNow);
        Assert.Equal(0, k.MemInfo().PageTables);
        Assert.Equal(0, t.Mm.PgtablePages);
    }

    [Fact]
    public void A_memfd_closed_while_mapped_is_freed_with_its_reservations_when_its_last_mapping_goes()
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 4 });
        var t = k.Spawn("A");
        int fd = (int)k.MemfdCreate(t, "m", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_2MB).Ret;
        k.Ftruncate(t, fd, (long)(2 * H));
        ulong va = (ulong)k.Mmap(t, 2 * H, RW, Mman.MAP_SHARED, fd, 0, "m").Ret;
        k.Access(t, va, 8, write: true, seed: 1);
        var inode = t.Fds[fd].Inode;
        k.Close(t, fd);
        Assert.Equal((3, 1), (k.H2M.free_huge_pages, k.H2M.resv_huge_pages));

        k.Munmap(t, va, 2 * H);

        Assert.Equal((4, 0), (k.H2M.free_huge_pages, k.H2M.resv_huge_pages));
        Assert.Empty(inode.PageCache);
    }

    [Fact]
    public void Truncating_a_hugetlbfs_file_unmaps_and_frees_private_copies_beyond_the_new_size()
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 4 });
        var t = k.Spawn("A");
        int fd = (int)k.MemfdCreate(t, "m", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_2MB).Ret;
        k.Ftruncate(t, fd, (long)(2 * H));
        ulong va = (ulong)k.Mmap(t, 2 * H, RW, Mman.MAP_PRIVATE, fd, 0, "p").Ret;
        Assert.Equal("ok", k.Access(t, va + H, 8, write: true, seed: 1).Outcome); // a private copy of page 1
        Assert.Equal(3, k.H2M.free_huge_pages);

        k.Ftruncate(t, fd, (long)H);

        Assert.Equal(4, k.H2M.free_huge_pages);
        Assert.Equal("SIGBUS BUS_ADRERR", k.Access(t, va + H, 8, write: false).Outcome); // beyond EOF now
    }

    [Fact]
    public void Punching_a_hole_in_a_hugetlbfs_file_also_drops_private_copies_of_the_hole()
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 4 });
        var t = k.Spawn("A");
        int fd = (int)k.MemfdCreate(t, "m", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_2MB).Ret;
        k.Ftruncate(t, fd, (long)(2 * H));
        ulong va = (ulong)k.Mmap(t, 2 * H, RW, Mman.MAP_PRIVATE, fd, 0, "p").Ret;
        k.Access(t, va, 8, write: true, seed: 9);
        Assert.Equal(3, k.H2M.free_huge_pages);

        Assert.Equal(0, k.Fallocate(t, fd, Memfd.FALLOC_FL_PUNCH_HOLE | Memfd.FALLOC_FL_KEEP_SIZE, 0, H).Ret);

        Assert.Equal(4, k.H2M.free_huge_pages);
        var check = new ContentCheck(ContentTag.Zero, 0);
        Assert.Equal("ok", k.Access(t, va, 4096, write: false, check: check).Outcome); // a fresh zero page inside the file
        Assert.Equal(0, check.Mismatches);
    }
}

public class PrivateMappingContentTests
{
    private const int RW = Mman.PROT_READ | Mman.PROT_WRITE;
    private const ulong H = 2 * Units.MiB;

    [Fact]
    public void A_first_write_to_a_private_mapping_of_a_hugetlbfs_page_copies_the_file_content()
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 4 });
        var t = k.Spawn("A");
        int fd = (int)k.MemfdCreate(t, "m", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_2MB).Ret;
        k.Ftruncate(t, fd, (long)H);
        ulong shared = (ulong)k.Mmap(t, H, RW, Mman.MAP_SHARED, fd, 0, "s").Ret;
        k.Access(t, shared, H, write: true, seed: 77);
        ulong priv = (ulong)k.Mmap(t, H, RW, Mman.MAP_PRIVATE, fd, 0, "p").Ret;

        Assert.Equal("ok", k.Access(t, priv, 64, write: true, seed: 5).Outcome); // write fault: COW of the file page

        var check = new ContentCheck(77, 64);
        Assert.Equal("ok", k.Access(t, priv + 64, 4096, write: false, check: check).Outcome);
        Assert.Equal(0, check.Mismatches);
    }

    [Fact]
    public void A_first_write_to_a_private_mapping_of_a_tmpfs_page_copies_the_file_content()
    {
        var k = new Kernel(new KernelConfig());
        var t = k.Spawn("A");
        int fd = (int)k.MemfdCreate(t, "m", 0).Ret;
        k.Ftruncate(t, fd, (long)H);
        ulong shared = (ulong)k.Mmap(t, H, RW, Mman.MAP_SHARED, fd, 0, "s").Ret;
        k.Access(t, shared, H, write: true, seed: 77);
        ulong priv = (ulong)k.Mmap(t, H, RW, Mman.MAP_PRIVATE, fd, 0, "p").Ret;

        Assert.Equal("ok", k.Access(t, priv, 64, write: true, seed: 5).Outcome);

        var check = new ContentCheck(77, 64);
        Assert.Equal("ok", k.Access(t, priv + 64, 4032, write: false, check: check).Outcome);
        Assert.Equal(0, check.Mismatches);
    }
}

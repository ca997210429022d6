using HugeFault.Mm;

namespace HugeFault.Tests.Mm;

public class SoftOfflineTests
{
    private static (Kernel k, TaskStruct a, ulong va) InUse1G(string kernel, long pages)
    {
        var k = new Kernel(new KernelConfig { MemoryBytes = 8 * Units.GiB, HugePages1G = pages, KernelVersion = Version.Parse(kernel) });
        var a = k.Spawn("A");
        int fd = (int)k.MemfdCreate(a, "data", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        Assert.False(k.Ftruncate(a, fd, (long)Units.GiB).Failed);
        ulong va = (ulong)k.Mmap(a, Units.GiB, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "a").Ret;
        Assert.Equal("ok", k.Access(a, va, 4096, write: true, seed: 3).Outcome);
        return (k, a, va);
    }

    [Theory]
    [InlineData("6.1", "soft offline: ")]
    [InlineData("6.12", "Soft offline: ")]
    public void Without_a_free_1G_page_the_migration_fails_with_ENOMEM_and_nothing_is_poisoned(string kernel, string prefix)
    {
        var (k, a, va) = InUse1G(kernel, pages: 1);
        var r = k.Madvise(a, va + 0x5000, 4096, Mman.MADV_SOFT_OFFLINE);
        Assert.Equal((-1L, Errno.ENOMEM), (r.Ret, r.Errno));
        Assert.Equal(0, k.NumPoisonedPages);
        Assert.Contains(k.Trace.OfType<LogEvent>(), l => l.Text.StartsWith(prefix + "0x", StringComparison.Ordinal) && l.Text.Contains("hugepage migration failed -12"));
        Assert.Empty(k.Trace.OfType<SignalEvent>());
        Assert.Equal("ok", k.Access(a, va, 4096, write: false).Outcome);
    }

    [Fact]
    public void With_a_free_1G_page_the_folio_moves_and_the_old_one_is_dissolved()
    {
        var (k, a, va) = InUse1G("6.12", pages: 2);
        Assert.Equal(0, k.Madvise(a, va + 0x5000, 4096, Mman.MADV_SOFT_OFFLINE).Ret);
        Assert.Equal(1, k.NumPoisonedPages);
        Assert.Equal(1, k.H1G.nr_huge_pages);
        Assert.Empty(k.Trace.OfType<SignalEvent>());
    }

    /// <summary>A 4 KiB page mapped by A and by its fork B (shmem: each maps the memfd MAP_SHARED; anon: B inherits A's private page).</summary>
    private static (Kernel k, TaskStruct a, TaskStruct b, ulong va, Folio old) Order0(bool shmem)
    {
        var k = new Kernel(new KernelConfig { MemoryBytes = 2 * Units.GiB });
        var a = k.Spawn("A");
        ulong va;
        TaskStruct b;
        if (shmem)
        {
            int fd = (int)k.MemfdCreate(a, "data", 0).Ret;
            Assert.False(k.Ftruncate(a, fd, 1 << 20).Failed);
            b = k.Fork(a, "B");
            va = (ulong)k.Mmap(a, 1 << 20, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "m").Ret;
            Assert.Equal(va, (ulong)k.Mmap(b, 1 << 20, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "m").Ret);
            Assert.Equal("ok", k.Access(a, va + 0x3000, 4096, write: true, seed: 5).Outcome);
            Assert.Equal("ok", k.Access(b, va + 0x3000, 4096, write: false).Outcome);
        }
        else
        {
            va = (ulong)k.Mmap(a, 1 << 20, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS, -1, 0, "m").Ret;
            Assert.Equal("ok", k.Access(a, va + 0x3000, 4096, write: true, seed: 5).Outcome);
            b = k.Fork(a, "B");
            Assert.Equal("ok", k.Access(b, va + 0x3000, 4096, write: false).Outcome);
        }
        var old = k.Phys.FolioOf(k.Walk(a.Mm, va + 0x3000).Entry.Pfn)!;
        Assert.Equal((0, 2), (old.Order, old.Mapcount));
        Assert.Equal(shmem ? 3 : 2, old.RefCount); // the page cache's reference (shmem) and one per mapping
        return (k, a, b, va, old);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_order_0_page_migrates_with_every_reference_accounted(bool shmem)
    {
        var (k, a, b, va, old) = Order0(shmem);
        Assert.Equal(0, k.Madvise(a, va + 0x3000, 4096, Mman.MADV_SOFT_OFFLINE).Ret);
        var nf = k.Phys.FolioOf(k.Walk(a.Mm, va + 0x3000).Entry.Pfn)!;
        Assert.NotSame(old, nf);
        Assert.Same(nf, k.Phys.FolioOf(k.Walk(b.Mm, va + 0x3000).Entry.Pfn));
        // the new folio holds exactly what the old one held; the old one is freed (once) and quarantined
        Assert.Equal((shmem ? 3 : 2, 2), (nf.RefCount, nf.Mapcount));
        Assert.Equal(0, old.RefCount);
        Assert.Null(k.Phys.FolioOf(old.Pfn));
        Assert.True(k.Phys.IsRawHwpoison(old.Pfn));
        Assert.False(k.Phys.IsFreePfn(old.Pfn));
        var check = new ContentCheck(5, 0);
        Assert.Equal("ok", k.Access(b, va + 0x3000, 4096, write: false, check: check).Outcome);
        Assert.Equal((64, 0), (check.LinesChecked, check.Mismatches));
        // the mappings go: an anonymous folio is freed with its last one; a shmem folio keeps the page cache's
        // reference until the file goes, and is freed when it does
        k.DoExit(a, "done"); k.DoExit(b, "done");
        Assert.Equal(0, nf.Mapcount);
        bool freed = k.Phys.FolioOf(nf.Pfn) is null;
        Assert.Equal(freed ? 0 : 1, nf.RefCount);
        Assert.True(shmem || freed);
    }
}

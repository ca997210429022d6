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
}

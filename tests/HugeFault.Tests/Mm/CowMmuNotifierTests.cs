using HugeFault.Mm;

namespace HugeFault.Tests.Mm;

/// <summary>
/// A copy-on-write moves a mapping to a new page, so secondary MMUs (KVM's EPT) that map the old one must be told:
/// hugetlb_wp() brackets its break-COW with mmu_notifier_invalidate_range_start/end over [haddr, haddr +
/// huge_page_size(h)), wp_page_copy() over the 4 KiB page. Reusing a sole-owner page tells nobody (nothing moves).
/// </summary>
public class CowMmuNotifierTests
{
    private const int RW = Mman.PROT_READ | Mman.PROT_WRITE;
    private const ulong H = 2 * Units.MiB;

    private static (Kernel K, TaskStruct A, ulong Va, List<(MmStruct Mm, ulong Start, ulong Size)> Seen) Forked(int extraFlags, ulong len)
    {
        var k = new Kernel(new KernelConfig { HugePages2M = 4 });
        var a = k.Spawn("A");
        ulong va = (ulong)k.Mmap(a, len, RW, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | extraFlags, -1, 0, "m").Ret;
        Assert.Equal("ok", k.Access(a, va, len, write: true, seed: 1).Outcome);
        k.Fork(a, "B");
        var seen = new List<(MmStruct, ulong, ulong)>();
        k.MmuNotifier += (mm, s, n) => seen.Add((mm, s, n));
        return (k, a, va, seen);
    }

    [Fact]
    public void Hugetlb_wp_invalidates_the_huge_range_of_the_page_it_copies()
    {
        var (k, a, va, seen) = Forked(Mman.MAP_HUGETLB | Mman.MAP_HUGE_2MB, H);
        ulong before = k.Walk(a.Mm, va).Entry.Pfn;

        Assert.Equal("ok", k.Access(a, va + 0x12345, 8, write: true, seed: 2).Outcome);

        Assert.NotEqual(before, k.Walk(a.Mm, va).Entry.Pfn); // copied
        Assert.Equal([(a.Mm, va, H)], seen);
        seen.Clear();
        Assert.Equal("ok", k.Access(a, va + 0x1000, 8, write: true, seed: 3).Outcome); // now writable: no fault, no notifier
        Assert.Empty(seen);
    }

    [Fact]
    public void The_4K_copy_on_write_invalidates_the_page_it_copies()
    {
        var (k, a, va, seen) = Forked(0, 4 * Units.PAGE_SIZE);

        Assert.Equal("ok", k.Access(a, va + 0x2010, 8, write: true, seed: 2).Outcome);

        Assert.Equal([(a.Mm, va + 0x2000, Units.PAGE_SIZE)], seen);
    }
}

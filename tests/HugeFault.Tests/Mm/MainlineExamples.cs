using HugeFault.Mm;

namespace HugeFault.Tests.Mm;

public class MainlineExamples
{
    private static (Kernel k, TaskStruct a, TaskStruct b, ulong va, ulong vb, int fd) TwoMappers(long pages = 2)
    {
        var k = new Kernel(new KernelConfig { MemoryBytes = 8 * Units.GiB, HugePages1G = pages });
        var a = k.Spawn("A");
        int fd = (int)k.MemfdCreate(a, "guest", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        Assert.False(k.Ftruncate(a, fd, (long)Units.GiB).Failed);
        var b = k.Fork(a, "B");
        ulong va = (ulong)k.Mmap(a, Units.GiB, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "a").Ret;
        ulong vb = (ulong)k.Mmap(b, Units.GiB, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "b").Ret;
        return (k, a, b, va, vb, fd);
    }

    [Fact]
    public void Touching_a_shared_1G_mapping_consumes_the_reservation()
    {
        var (k, a, _, va, _, _) = TwoMappers();
        Assert.Equal(1, k.H1G.resv_huge_pages);
        Assert.Equal("ok", k.Access(a, va, 1, write: true, seed: 7).Outcome);
        Assert.Equal(1, k.H1G.free_huge_pages);
        Assert.Equal(0, k.H1G.resv_huge_pages);
    }

    [Fact]
    public void Madvise_hwpoison_signals_the_injector_with_lsb_30_and_the_other_mapper_only_on_touch()
    {
        var (k, a, b, va, vb, _) = TwoMappers();
        k.Access(a, va, Units.GiB, write: true, seed: 7);
        k.Access(b, vb, 4096, write: false);
        var r = k.Madvise(a, va + 0x12345000, 4096, Mman.MADV_HWPOISON);
        Assert.Equal(0, r.Ret);
        var sig = Assert.Single(k.Trace.OfType<SignalEvent>());
        Assert.Equal(("A", Sig.BUS_MCEERR_AR, va + 0x12345000, 30), (sig.Task, sig.SiCode, sig.SiAddr, sig.SiAddrLsb));
        Assert.Equal(1, k.NumPoisonedPages);
        var res = k.Access(b, vb + 0x5000, 8, write: false);
        Assert.Equal("SIGBUS BUS_MCEERR_AR", res.Outcome);
        var sig2 = k.Trace.OfType<SignalEvent>().Last();
        Assert.Equal(("B", vb + 0x5000, 30), (sig2.Task, sig2.SiAddr, sig2.SiAddrLsb));
    }

    [Fact]
    public void A_write_survives_and_reads_back_through_another_mapper()
    {
        var (k, a, b, va, vb, _) = TwoMappers();
        k.Access(a, va + 4096, 1 << 20, write: true, seed: 99, patternOffset: 0);
        var check = new ContentCheck(99, 0);
        k.Access(b, vb + 4096, 1 << 20, write: false, check: check);
        Assert.Equal(0, check.Mismatches);
        Assert.Equal((1 << 20) / 64, check.LinesChecked);
    }
}

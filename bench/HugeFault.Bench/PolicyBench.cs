using BenchmarkDotNet.Attributes;
using HugeFault;
using HugeFault.Mm;

namespace HugeFault.Bench;

/// <summary>
/// memory_failure() on an in-use 1 GiB hugetlb folio mapped by N processes, under each recovery policy
/// (a scrubbed permanent error in one cacheline), and the page-table memory each policy leaves behind.
/// </summary>
[MemoryDiagnoser]
public class PolicyBench
{
    [Params("mainline", "hgm", "hgm-full-split", "vma-convert", "userspace-migrate", "repair", "copy-around", "keep-mapped")]
    public string Policy { get; set; } = "mainline";

    [Params(1, 8, 64)]
    public int Mappers { get; set; }

    private Kernel _k = null!;
    private ulong _pa;

    [IterationSetup]
    public void Setup()
    {
        _k = new Kernel(new KernelConfig { MemoryBytes = 8UL << 30, HugePages1G = 2, Policy = Policy });
        var a = _k.Spawn("A");
        int fd = (int)_k.MemfdCreate(a, "g", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        _k.Ftruncate(a, fd, 1L << 30);
        var tasks = new List<TaskStruct> { a };
        for (int i = 1; i < Mappers; i++) tasks.Add(_k.Fork(a, "P" + i)); // fork first: each maps the file itself
        ulong va = 0;
        foreach (var t in tasks)
        {
            ulong v = (ulong)_k.Mmap(t, 1UL << 30, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "m").Ret;
            _k.Access(t, v, 64, write: true, 7, 0);
            if (t == a) va = v;
        }
        var r = _k.Walk(a.Mm, va + 0x1234_5040);
        if (!r.Entry.Present) throw new InvalidOperationException("setup: the folio is not mapped");
        _pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (va + 0x1234_5040 - r.Va);
        _k.Phys.PoisonLine(_pa, PoisonKind.Permanent);
    }

    [Benchmark]
    public long MemoryFailureOnA1GFolio()
    {
        _k.MemoryFailure(_pa >> Units.PAGE_SHIFT, MfFlags.None, _pa);
        return _k.Stats.TablePagesNow;
    }
}

/// <summary>Prints page-table memory per policy next to the spec's arithmetic (run with --filter '*PageTableReport*').</summary>
public class PageTableReport
{
    [Benchmark]
    public string Report()
    {
        var lines = new List<string>();
        foreach (var p in new[] { "mainline", "hgm", "hgm-full-split" })
        {
            var k = new Kernel(new KernelConfig { MemoryBytes = 8UL << 30, HugePages1G = 2, Policy = p });
            var a = k.Spawn("A");
            var va = (ulong)k.Mmap(a, 1UL << 30, 3, Mman.MAP_SHARED | Mman.MAP_ANONYMOUS | Mman.MAP_HUGETLB | Mman.MAP_HUGE_1GB, -1, 0, "m").Ret;
            k.Access(a, va, 64, write: true, 7, 0);
            long before = k.Stats.TablePagesNow;
            var r = k.Walk(a.Mm, va + 0x40);
            k.MemoryFailure(r.Entry.Pfn, MfFlags.None, r.Entry.Pfn << 12);
            lines.Add($"{p}: +{(k.Stats.TablePagesNow - before) * 4} KiB of page tables per mapping");
        }
        Console.WriteLine(string.Join("\n", lines) + "\nspec §6: 1 GiB at 4 KiB = 512 PTE pages (2 MiB) + 1 PMD page (4 KiB) = 2052 KiB; at 2 MiB = 4 KiB; minimal HGM split = 1 PMD + 1 PTE page = 8 KiB");
        return string.Join(";", lines);
    }
}

using BenchmarkDotNet.Attributes;
using HugeFault;
using HugeFault.Mm;

namespace HugeFault.Bench;

/// <summary>
/// memory_failure() on an in-use 1 GiB hugetlb folio mapped MAP_SHARED by 1, 8, 64 or 1,024 processes, under each
/// recovery policy: a scrubbed permanent error in one cacheline (the patrol scrubber's memory_failure(pfn, 0)).
/// Each measured operation consumes a freshly built kernel (<see cref="OneShotConfig"/>).
/// Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- --filter '*PolicyBench*'</c>; a few cells with
/// <c>HUGEFAULT_BENCH_POLICIES=hgm,mainline HUGEFAULT_BENCH_MAPPERS=64</c> in the environment.
/// </summary>
[Config(typeof(OneShotConfig))]
public class PolicyBench
{
    [ParamsSource(nameof(Policies))]
    public string Policy { get; set; } = "mainline";

    [ParamsSource(nameof(MapperCounts))]
    public int Mappers { get; set; }

    /// <summary>Every policy, or the comma-separated list in HUGEFAULT_BENCH_POLICIES (to run a few cells side by side).</summary>
    public static IEnumerable<string> Policies => FromEnv("HUGEFAULT_BENCH_POLICIES", s => s)
        ?? ["mainline", "hgm", "hgm-v2", "hgm-full-split", "vma-convert", "userspace-migrate", "repair", "copy-around", "keep-mapped"];

    /// <summary>1, 8, 64 and 1,024 mappers, or the comma-separated list in HUGEFAULT_BENCH_MAPPERS.</summary>
    public static IEnumerable<int> MapperCounts => FromEnv("HUGEFAULT_BENCH_MAPPERS", s => int.Parse(s, System.Globalization.CultureInfo.InvariantCulture)) ?? [1, 8, 64, 1024];

    private static List<T>? FromEnv<T>(string name, Func<string, T> parse) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(parse).ToList() : null;

    private (Kernel K, ulong Pa)[] _batch = [];

    [IterationSetup]
    public void Setup()
    {
        _batch = new (Kernel, ulong)[OneShotConfig.Batch];
        for (int i = 0; i < _batch.Length; i++) _batch[i] = Build(Policy, Mappers);
    }

    /// <summary>A host with two 1 GiB pages (the trace not recorded unless asked: nothing reads it here); one memfd page mapped MAP_SHARED and touched by every mapper; a permanent poisoned line planted in it. Returns the line's physical address.</summary>
    public static (Kernel K, ulong Pa) Build(string policy, int mappers, bool recordTrace = false)
    {
        var k = new Kernel(new KernelConfig { MemoryBytes = 8UL << 30, HugePages1G = 2, Policy = policy, RecordTrace = recordTrace });
        var a = k.Spawn("A");
        int fd = (int)k.MemfdCreate(a, "g", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        k.Ftruncate(a, fd, 1L << 30);
        var tasks = new List<TaskStruct> { a };
        for (int i = 1; i < mappers; i++) tasks.Add(k.Fork(a, "P" + i)); // fork first: each maps the file itself
        ulong va = 0;
        foreach (var t in tasks)
        {
            ulong v = (ulong)k.Mmap(t, 1UL << 30, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "m").Ret;
            k.Access(t, v, 64, write: true, 7, 0);
            if (t == a) va = v;
        }
        var r = k.Walk(a.Mm, va + 0x1234_5040);
        if (!r.Entry.Present) throw new InvalidOperationException("setup: the folio is not mapped");
        ulong pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (va + 0x1234_5040 - r.Va);
        k.Phys.PoisonLine(pa, PoisonKind.Permanent);
        return (k, pa);
    }

    [Benchmark(OperationsPerInvoke = OneShotConfig.Batch)]
    public long MemoryFailureOnA1GFolio()
    {
        long n = 0;
        foreach (var (k, pa) in _batch)
        {
            k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
            n += k.Stats.TablePagesNow;
        }
        return n;
    }
}

/// <summary>Prints page-table memory per policy next to the arithmetic (run with --filter '*PageTableReport*').</summary>
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
        Console.WriteLine(string.Join("\n", lines) + "\n1 GiB at 4 KiB = 512 PTE pages (2 MiB) + 1 PMD page (4 KiB) = 2052 KiB; at 2 MiB = 4 KiB; minimal HGM split = 1 PMD + 1 PTE page = 8 KiB");
        return string.Join(";", lines);
    }
}

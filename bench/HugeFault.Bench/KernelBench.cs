using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using HugeFault.Mm;

namespace HugeFault.Bench;

/// <summary>
/// The kernel model's costly paths. This class: memory_failure() on an in-use 1 GiB folio mapped by 1, 8 or 64
/// processes (collect_procs + unmap from every mapper). <see cref="KernelFaultBench"/>: one 1 GiB hugetlb
/// first-touch fault. <see cref="KernelHostBench"/>: building a 1.5 TiB host (1,600 GiB, 1,536 × 1 GiB pages
/// all mapped by one process and written), whose retained model memory the "Model MiB" column reports
/// (target: well under 100 MiB).
/// memory_failure and first touch are one-shot, so the kernels are built in [IterationSetup] and each measured
/// call consumes <see cref="Batch"/> of them (time and allocation are per operation).
/// Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- --filter '*Kernel*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public class KernelBench
{
    public const int Batch = 16;

    private (Kernel K, ulong Pfn)[] _poison = [];

    /// <summary>Processes mapping the poisoned 1 GiB folio (all MAP_SHARED of one memfd, all populated).</summary>
    [Params(1, 8, 64)]
    public int Mappers { get; set; }

    [IterationSetup(Target = nameof(MemoryFailureOnInUse1GFolio))]
    public void SetupPoison()
    {
        _poison = new (Kernel, ulong)[Batch];
        for (int i = 0; i < Batch; i++) _poison[i] = SharedGigantic(Mappers);
    }

    /// <summary>memory_failure(pfn, 0) as from the patrol scrubber: mark, collect, unmap the 1 GiB leaf from every mapper.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    [InvocationCount(1)]
    public int MemoryFailureOnInUse1GFolio()
    {
        int r = 0;
        for (int i = 0; i < Batch; i++) { var (k, pfn) = _poison[i]; r |= k.MemoryFailure(pfn, MfFlags.None); }
        return r;
    }

    /// <summary>A host whose 1 GiB memfd page is mapped MAP_SHARED and populated by <paramref name="mappers"/> processes; returns the pfn to poison.</summary>
    public static (Kernel K, ulong Pfn) SharedGigantic(int mappers)
    {
        var k = new Kernel(new KernelConfig { MemoryBytes = 4 * Units.GiB, HugePages1G = 1 });
        var a = k.Spawn("A");
        int fd = (int)k.MemfdCreate(a, "guest", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        k.Ftruncate(a, fd, (long)Units.GiB);
        var tasks = new List<TaskStruct> { a };
        for (int i = 1; i < mappers; i++) tasks.Add(k.Fork(a, "P" + i));
        ulong pfn = 0;
        foreach (var t in tasks)
        {
            ulong va = (ulong)k.Mmap(t, Units.GiB, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "g").Ret;
            k.Access(t, va, 64, write: true, seed: 7);
            var r = k.Walk(t.Mm, va);
            pfn = r.Entry.Pfn + 0x12345;
        }
        return (k, pfn);
    }

    /// <summary>1,600 GiB of memory, 1,536 × 1 GiB hugetlb pages, all mapped by one process with one MAP_SHARED memfd mapping and written end to end.</summary>
    public static (Kernel K, TaskStruct T) BuildHugeHost()
    {
        const long pages = 1536;
        var k = new Kernel(new KernelConfig { MemoryBytes = 1600 * Units.GiB, HugePages1G = pages });
        var t = k.Spawn("vmm");
        int fd = (int)k.MemfdCreate(t, "guest-ram", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        ulong len = (ulong)pages * Units.GiB;
        k.Ftruncate(t, fd, (long)len);
        ulong va = (ulong)k.Mmap(t, len, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "ram").Ret;
        var res = k.Access(t, va, len, write: true, seed: 42);
        if (res.Done != len || k.H1G.free_huge_pages != 0) throw new InvalidOperationException($"building the host failed: {res.Outcome}, free={k.H1G.free_huge_pages}");
        return (k, t);
    }

    /// <summary>Retained managed bytes of a built 1.5 TiB host (GC.GetTotalMemory after a full collection, before vs after), and bytes allocated building it.</summary>
    public static (long Retained, long Allocated, long Approx) MeasureHugeHost()
    {
        long before = GC.GetTotalMemory(forceFullCollection: true);
        long alloc0 = GC.GetAllocatedBytesForCurrentThread();
        var (k, t) = BuildHugeHost();
        long alloc = GC.GetAllocatedBytesForCurrentThread() - alloc0;
        long after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(k); GC.KeepAlive(t);
        return (after - before, alloc, k.Phys.ApproxModelBytes());
    }
}

/// <summary>One 1 GiB hugetlb first-touch fault (each call consumes <see cref="KernelBench.Batch"/> fresh kernels).</summary>
[MemoryDiagnoser]
public class KernelFaultBench
{
    private (Kernel K, TaskStruct T, ulong Va)[] _fault = [];

    [IterationSetup]
    public void SetupFault()
    {
        _fault = new (Kernel, TaskStruct, ulong)[KernelBench.Batch];
        for (int i = 0; i < KernelBench.Batch; i++)
        {
            var k = new Kernel(new KernelConfig { MemoryBytes = 4 * Units.GiB, HugePages1G = 1 });
            var t = k.Spawn("A");
            ulong va = (ulong)k.Mmap(t, Units.GiB, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_HUGETLB | Mman.MAP_HUGE_1GB, -1, 0, "a").Ret;
            _fault[i] = (k, t, va);
        }
    }

    /// <summary>One store to an untouched 1 GiB MAP_HUGETLB page: hugetlb_fault() -> hugetlb_no_page(), PUD leaf install, rmap.</summary>
    [Benchmark(OperationsPerInvoke = KernelBench.Batch)]
    [InvocationCount(1)]
    public ulong FirstTouchOf1GHugetlbPage()
    {
        ulong done = 0;
        for (int i = 0; i < KernelBench.Batch; i++) { var (k, t, va) = _fault[i]; done += k.Access(t, va + 0x1234, 8, write: true, seed: 1).Done; }
        return done;
    }
}

/// <summary>The 1.5 TiB host: time and allocation to build it, and the retained model memory in the "Model MiB" column.</summary>
[MemoryDiagnoser]
[Config(typeof(KernelBenchConfig))]
public class KernelHostBench
{
    /// <summary>Builds the 1.5 TiB host and maps and writes all of it; see the "Model MiB" column for what it retains.</summary>
    [Benchmark]
    public long Build1536GHost() => KernelBench.BuildHugeHost().K.Phys.FreePages > 0 ? 1 : 0;
}

/// <summary>Adds the "Model MiB" column: the retained model memory of the 1.5 TiB host, measured once in the host process.</summary>
public sealed class KernelBenchConfig : ManualConfig
{
    public KernelBenchConfig() => AddColumn(new ModelMemoryColumn());
}

/// <summary>Retained (and allocated) MiB of <see cref="KernelBench.BuildHugeHost"/>; "-" for the other benchmarks.</summary>
public sealed class ModelMemoryColumn : IColumn
{
    private static readonly Lazy<(long Retained, long Allocated, long Approx)> Measured = new(KernelBench.MeasureHugeHost);

    public string Id => nameof(ModelMemoryColumn);
    public string ColumnName => "Model MiB";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => false;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "1.5 TiB host: managed MiB retained after building it (allocated while building / the model's own estimate)";
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        if (benchmarkCase.Descriptor.WorkloadMethod.Name != nameof(KernelHostBench.Build1536GHost)) return "-";
        var (retained, allocated, approx) = Measured.Value;
        return $"{retained / 1048576.0:0.0} (alloc {allocated / 1048576.0:0.0}, est {approx / 1048576.0:0.0})";
    }

    public override string ToString() => ColumnName;
}

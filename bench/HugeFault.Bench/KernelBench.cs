using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using HugeFault.Mm;

namespace HugeFault.Bench;

/// <summary>
/// The kernel model's other costly paths. <see cref="KernelFaultBench"/>: one 1 GiB hugetlb first-touch fault.
/// <see cref="KernelHostBench"/>: building a 1.5 TiB host (1,600 GiB, 1,536 × 1 GiB pages all mapped by one process and
/// written), whose retained model memory the "Model MiB" column reports. <see cref="ModelMemory"/> (run the bench with
/// the argument <c>memory</c>) prints the retained model memory of that host mapped by 64 processes, before and after one
/// memory error under several policies. memory_failure() itself is <see cref="PolicyBench"/>.
/// Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- --filter '*Kernel*'</c>.
/// </summary>
public static class KernelBench
{
    /// <summary>
    /// 1,600 GiB of memory, 1,536 × 1 GiB hugetlb pages in one memfd, mapped MAP_SHARED by <paramref name="mappers"/>
    /// processes: the first writes all of it end to end, the others MAP_POPULATE it. The policy decides what a later
    /// memory error does.
    /// </summary>
    public static (Kernel K, TaskStruct T, ulong Va) BuildHugeHost(int mappers = 1, string policy = "mainline")
    {
        const long pages = 1536;
        var k = new Kernel(new KernelConfig { MemoryBytes = 1600 * Units.GiB, HugePages1G = pages, Policy = policy });
        var t = k.Spawn("vmm");
        int fd = (int)k.MemfdCreate(t, "guest-ram", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB).Ret;
        ulong len = (ulong)pages * Units.GiB;
        k.Ftruncate(t, fd, (long)len);
        var others = new List<TaskStruct>();
        for (int i = 1; i < mappers; i++) others.Add(k.Fork(t, "P" + i));
        ulong va = (ulong)k.Mmap(t, len, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0, "ram").Ret;
        var res = k.Access(t, va, len, write: true, seed: 42);
        if (res.Done != len || k.H1G.free_huge_pages != 0) throw new InvalidOperationException($"building the host failed: {res.Outcome}, free={k.H1G.free_huge_pages}");
        foreach (var o in others)
            k.Mmap(o, len, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED | Mman.MAP_POPULATE, fd, 0, "ram");
        return (k, t, va);
    }

    /// <summary>Retained managed bytes of a built 1.5 TiB host (GC.GetTotalMemory after a full collection, before vs after), and bytes allocated building it.</summary>
    public static (long Retained, long Allocated, long Approx) MeasureHugeHost()
    {
        long before = GC.GetTotalMemory(forceFullCollection: true);
        long alloc0 = GC.GetAllocatedBytesForCurrentThread();
        var (k, t, _) = BuildHugeHost();
        long alloc = GC.GetAllocatedBytesForCurrentThread() - alloc0;
        long after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(k); GC.KeepAlive(t);
        return (after - before, alloc, k.Phys.ApproxModelBytes());
    }
}

/// <summary>One 1 GiB hugetlb first-touch fault (each operation consumes a fresh kernel).</summary>
[Config(typeof(OneShotConfig))]
public class KernelFaultBench
{
    private (Kernel K, TaskStruct T, ulong Va)[] _fault = [];

    [IterationSetup]
    public void SetupFault()
    {
        _fault = new (Kernel, TaskStruct, ulong)[OneShotConfig.Batch];
        for (int i = 0; i < _fault.Length; i++)
        {
            var k = new Kernel(new KernelConfig { MemoryBytes = 4 * Units.GiB, HugePages1G = 1 });
            var t = k.Spawn("A");
            ulong va = (ulong)k.Mmap(t, Units.GiB, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS | Mman.MAP_HUGETLB | Mman.MAP_HUGE_1GB, -1, 0, "a").Ret;
            _fault[i] = (k, t, va);
        }
    }

    /// <summary>One store to an untouched 1 GiB MAP_HUGETLB page: hugetlb_fault() -> hugetlb_no_page(), PUD leaf install, rmap.</summary>
    [Benchmark(OperationsPerInvoke = OneShotConfig.Batch)]
    public ulong FirstTouchOf1GHugetlbPage()
    {
        ulong done = 0;
        foreach (var (k, t, va) in _fault) done += k.Access(t, va + 0x1234, 8, write: true, seed: 1).Done;
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

using System.Diagnostics;
using System.Runtime.CompilerServices;
using HugeFault.Mm;

namespace HugeFault.Bench;

/// <summary>
/// The model's own memory for a big host: 1.5 TiB (1,536 × 1 GiB hugetlb pages in one memfd) mapped MAP_SHARED end to
/// end by 1 or 64 processes, then one permanent error in one cacheline under a policy. Prints the managed bytes
/// retained (GC.GetTotalMemory after full collections) before and after the error, the page-table pages the model holds,
/// and the retained bytes per page-table page the error added: a model that costs per page-table page, not per subpage,
/// adds a few hundred bytes per page, not 4 KiB of entries plus per-subpage state.
/// Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- memory</c>.
/// </summary>
public static class ModelMemory
{
    public static void Print(TextWriter o)
    {
        o.WriteLine("host: 1,600 GiB, 1,536 x 1 GiB hugetlb pages in one memfd, mapped MAP_SHARED end to end by every process");
        o.WriteLine($"{"case",-44} {"retained MiB",13} {"page-table pages",17} {"error ms",9} {"+bytes/added table",19}");
        foreach (var (mappers, policy) in new[] { (1, ""), (64, ""), (64, "mainline"), (64, "hgm"), (64, "hgm-full-split"), (64, "vma-convert") })
            o.WriteLine(Measure(mappers, policy));
        o.WriteLine(MeasureVm4K(16 * Units.GiB));
    }

    /// <summary>
    /// Issue 12's input: a VM whose guest RAM is a 4 KiB-page memfd (order-0 shmem folios), populated as vm_create does
    /// (every page written): the model's retained bytes per guest page and the time it took.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static string MeasureVm4K(ulong ram)
    {
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var sw = Stopwatch.StartNew();
        var k = new Kernel(new KernelConfig { MemoryBytes = ram + 4 * Units.GiB, Policy = "mainline" });
        var vm = new HugeFault.Virt.Vm(k, "v", ram, Units.PAGE_SIZE, 1, new HugeFault.Virt.GuestConfig { KernelFraction = 0 }, new Version(10, 0));
        var r = k.Access(vm.Vmm, vm.RamHva, ram, write: true, ContentTag.PatternSeed("guest"), 0);
        double ms = sw.Elapsed.TotalMilliseconds;
        if (r.Outcome != "ok") throw new InvalidOperationException($"populate: {r.Outcome}");
        long retained = GC.GetTotalMemory(forceFullCollection: true) - before;
        GC.KeepAlive(vm);
        string name = "VM, " + Units.Size(ram) + " on 4 KiB pages, populated";
        string per = (retained / (double)(ram >> Units.PAGE_SHIFT)).ToString("0", System.Globalization.CultureInfo.InvariantCulture) + " B/page";
        return $"{name,-44} {retained / 1048576.0,13:0.0} {k.Stats.TablePagesNow,17:N0} {ms,9:0} {per,19}";
    }

    /// <summary>One case, in its own frame so that nothing of it is reachable when the next one starts.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static string Measure(int mappers, string policy)
    {
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var (k, t, va) = KernelBench.BuildHugeHost(mappers, policy.Length == 0 ? "mainline" : policy);
        long built = GC.GetTotalMemory(forceFullCollection: true) - before;
        long tables0 = k.Stats.TablePagesNow;
        string name = $"{mappers} mapper(s), no error";
        double ms = double.NaN;
        long retained = built;
        if (policy.Length > 0)
        {
            var r = k.Walk(t.Mm, va + 700 * Units.GiB + 0x1234_5040);
            ulong pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (va + 700 * Units.GiB + 0x1234_5040 - r.Va);
            k.Phys.PoisonLine(pa, PoisonKind.Permanent);
            var sw = Stopwatch.StartNew();
            k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
            ms = sw.Elapsed.TotalMilliseconds;
            retained = GC.GetTotalMemory(forceFullCollection: true) - before;
            name = $"{mappers} mappers, one error under {policy}";
        }
        long added = k.Stats.TablePagesNow - tables0;
        string per = added > 0 ? $"{(retained - built) / (double)added,19:0}" : $"{"-",19}";
        GC.KeepAlive(k);
        return $"{name,-44} {retained / 1048576.0,13:0.0} {k.Stats.TablePagesNow,17:N0} {(double.IsNaN(ms) ? "-" : ms.ToString("0.0")),9} {per}";
    }
}

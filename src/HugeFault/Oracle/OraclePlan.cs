using System.Text.Json.Nodes;
using HugeFault.Mm;
using HugeFault.Scenarios;

namespace HugeFault.Oracle;

/// <summary>
/// Turns a scenario into the plan the real-kernel runner executes: a JSON step list with every size,
/// flag and pattern already resolved to numbers, plus the kernel command line for its boot.
/// </summary>
/// <remarks>
/// Why JSON made on the host and not YAML parsed in the guest: the NativeAOT runner then needs only
/// System.Text.Json's <c>JsonDocument</c> (reflection-free) and none of the model library; flag
/// spellings, sizes like <c>1G-4K</c> and pattern seeds are resolved by the same parser code the model
/// uses, so the two sides cannot disagree on what a step means.
/// </remarks>
public static class OraclePlan
{
    /// <summary>Operations a real kernel cannot run (they drive the model's hardware or KVM).</summary>
    public static readonly IReadOnlySet<string> ModelOnlyOps = new HashSet<string> { "hw_error", "kvm_guest_access" };

    /// <summary>The scenario's key: its file name without directory and extension.</summary>
    public static string Key(Scenario sc) => Path.GetFileNameWithoutExtension(sc.File.Replace("builtin:", "", StringComparison.Ordinal));

    /// <summary>Why the scenario cannot run on real kernel <paramref name="kernel"/> (default 6.12), or null if it can.</summary>
    public static string? WhyNotReal(Scenario sc, Version? kernel = null)
    {
        kernel ??= OracleKernels.VersionOf(OracleKernels.Default);
        if (!sc.Mainline) return "not marked mainline: true";
        var bad = sc.Steps.FirstOrDefault(s => ModelOnlyOps.Contains(s.Op));
        if (bad is not null) return $"step {bad.Index} uses the model-only operation '{bad.Op}'";
        var madv = sc.Steps.Select(s => (s, s.Call as MadviseOp)).FirstOrDefault(x => x.Item2?.AdviceText is "MADV_SPLIT" or "MADV_COLLAPSE" or "MADV_REPAIR");
        if (madv.Item2 is { } m) return $"step {madv.s.Index} uses {m.AdviceText}, which mainline does not have";
        if (!sc.Kernel.Contains(kernel)) return $"needs kernel {sc.Kernel} (the real kernel is {kernel})";
        if (sc.Host.HugePages1G > 2) return "needs more than two 1 GiB pages (the guest has 6 GiB)";
        return null;
    }

    /// <summary>The huge page part of the kernel command line.</summary>
    public static string BootArgs(Scenario sc) =>
        $"default_hugepagesz=2M hugepagesz=1G hugepages={sc.Host.HugePages1G} hugepagesz=2M hugepages={sc.Host.HugePages2M}";

    /// <summary>
    /// qemu's -m for the boot: 4G, or 6G with two 1 GiB pages (a 4 GiB guest has RAM at 0-3G and 4-5G
    /// behind the PCI hole, and the kernel image takes the first GiB, so only one gigantic page fits).
    /// </summary>
    public static string GuestMemory(Scenario sc) => sc.Host.HugePages1G >= 2 ? "6G" : "4G";

    /// <summary>Every process name the scenario can have: initial processes, then fork children in order.</summary>
    public static List<string> ProcessNames(Scenario sc)
    {
        var l = sc.Processes.Select(p => p.Name).ToList();
        foreach (var s in sc.Steps)
        {
            if (s.Call is ForkOp f && !l.Contains(f.Child)) l.Add(f.Child);
            if (s.Call is ThreadOp t && !l.Contains(t.Name)) l.Add(t.Name);
        }
        return l;
    }

    public static JsonObject Build(Scenario sc)
    {
        var sysctl = new JsonObject();
        if (sc.Host.EarlyKill) sysctl["/proc/sys/vm/memory_failure_early_kill"] = "1";
        if (!sc.Host.Recovery) sysctl["/proc/sys/vm/memory_failure_recovery"] = "0";
        if (sc.Host.Overcommit2M > 0) sysctl["/sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages"] = sc.Host.Overcommit2M.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (sc.Host.Overcommit1G > 0) sysctl["/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_overcommit_hugepages"] = sc.Host.Overcommit1G.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var steps = new JsonArray();
        foreach (var s in sc.Steps) steps.Add((JsonNode)Step(s, sc)); // the JsonNode overload: no reflection (trimmed / Native AOT builds)
        return new JsonObject
        {
            ["name"] = Key(sc),
            ["title"] = sc.Name,
            ["bootargs"] = BootArgs(sc),
            ["processes"] = new JsonArray(sc.Processes.Select(p => (JsonNode)JsonValue.Create(p.Name)!).ToArray()),
            ["process_names"] = new JsonArray(ProcessNames(sc).Select(p => (JsonNode)JsonValue.Create(p)!).ToArray()),
            ["sysctl"] = sysctl,
            ["sigbus_default"] = new JsonArray(sc.Processes.Where(p => !p.SigbusHandled).Select(p => (JsonNode)JsonValue.Create(p.Name)!).ToArray()),
            ["steps"] = steps,
        };
    }

    private static JsonObject PatternJson(string text)
    {
        Pattern.TryParse(text, out var p);
        return PatternJson(p);
    }

    private static JsonObject PatternJson(Pattern p)
    {
        var o = new JsonObject { ["zero"] = p.IsZero, ["seed"] = p.Seed };
        if (p.At is { } at) o["at"] = at;
        return o;
    }

    /// <summary>The flags the guest runner passes to the syscall: the uapi values of the names the step gave.</summary>
    private static long Bits(FlagsArg f, Func<string, long> map) => f.Text.Length == 0 || f.Text == "0" ? 0 : f.Text.Split('|').Aggregate(0L, (acc, v) => acc | map(v));

    /// <summary>The step as the real-kernel runner's plan entry, from the step's typed record (StepOps.cs).</summary>
    private static JsonObject Step(Step s, Scenario sc)
    {
        var a = new JsonObject();
        var o = new JsonObject { ["i"] = s.Index, ["op"] = s.Op };
        if (s.As is { } who) o["as"] = who;
        void Range(MapRange r, long dfltLength)
        {
            a["map"] = r.Map; a["offset"] = (long)r.Offset.Value; a["length"] = r.Length is { } l ? (long)l.Value : dfltLength;
        }
        switch (s.Call)
        {
            case MemfdCreateOp m:
                a["name"] = m.Name; a["fd"] = m.Fd;
                a["flags"] = Bits(m.Flags, v => v switch
                {
                    "MFD_CLOEXEC" => 1, "MFD_ALLOW_SEALING" => 2, "MFD_HUGETLB" => 4, "MFD_HUGE_2MB" => 21L << 26, "MFD_HUGE_1GB" => 30L << 26, _ => 0,
                });
                break;
            case CloseOp c: a["fd"] = c.Fd; break;
            case FtruncateOp f: a["fd"] = f.Fd; a["length"] = (long)f.Length.Value; break;
            case FallocateOp f:
                a["fd"] = f.Fd; a["offset"] = (long)f.Offset.Value; a["length"] = (long)f.Length.Value;
                a["mode"] = Bits(f.Mode, v => v == "FALLOC_FL_KEEP_SIZE" ? 1 : 2 | 1);
                break;
            case LseekOp l: a["fd"] = l.Fd; a["offset"] = l.Offset; a["whence"] = l.Whence; break;
            case ReadOp r: a["fd"] = r.Fd; a["length"] = (long)r.Length.Value; break;
            case PreadOp r: a["fd"] = r.Fd; a["length"] = (long)r.Length.Value; a["offset"] = (long)r.Offset.Value; break;
            case ReadLoopOp r: a["fd"] = r.Fd; a["chunk"] = (long)r.Chunk.Value; break;
            case MmapOp m:
                a["name"] = m.Name;
                if (m.Fd is { } mfd) a["fd"] = mfd;
                a["length"] = (long)m.Length.Value; a["offset"] = (long)m.Offset.Value;
                a["prot"] = m.Prot.Bits; // PROT_READ 1, PROT_WRITE 2 (the uapi values); default both
                a["flags"] = Bits(m.Flags, v => v switch
                {
                    "MAP_SHARED" => 1, "MAP_PRIVATE" => 2, "MAP_ANONYMOUS" => 0x20, "MAP_HUGETLB" => 0x40000, "MAP_HUGE_2MB" => 21L << 26,
                    "MAP_HUGE_1GB" => 30L << 26, "MAP_NORESERVE" => 0x4000, "MAP_POPULATE" => 0x8000, _ => 0,
                });
                break;
            case MunmapOp m: Range(m.At, -1); break;
            case MadviseOp m:
                Range(m.At, (long)Units.PAGE_SIZE);
                a["advice"] = m.AdviceText switch { "MADV_DONTNEED" => 4, "MADV_REMOVE" => 9, "MADV_HWPOISON" => 100, "MADV_SOFT_OFFLINE" => 101, _ => -1 };
                break;
            case ForkOp f: a["child"] = f.Child; break;
            case PrctlOp p:
                a["arg2"] = p.Arg2 is null or "PR_MCE_KILL_CLEAR" ? 0 : 1;
                a["arg3"] = p.Arg3 is null ? 0 : p.Arg3 switch { "PR_MCE_KILL_EARLY" => 1, "PR_MCE_KILL_LATE" => 0, _ => 2 };
                break;
            // the value as the model reads it (a size such as 2M written out in bytes), so both kernels get the same number
            case SysctlOp c: a["path"] = "/proc/sys/" + c.Name.Replace('.', '/'); a["value"] = c.Value.ToString(System.Globalization.CultureInfo.InvariantCulture); break;
            case NrHugepagesOp n: a["path"] = $"/sys/kernel/mm/hugepages/hugepages-{(n.Size == "1G" ? 1048576 : 2048)}kB/nr_hugepages"; a["value"] = n.Value.ToString(System.Globalization.CultureInfo.InvariantCulture); break;
            case StoreOp st: Range(st.At, 1); a["pattern"] = PatternJson(st.Pattern); break;
            case LoadOp ld: Range(ld.At, 1); break;
            case CorruptPfnOp or UnpoisonPfnOp:
            {
                var (pfn, at) = s.Call is CorruptPfnOp c ? (c.Pfn, c.At) : (((UnpoisonPfnOp)s.Call).Pfn, ((UnpoisonPfnOp)s.Call).At);
                if (pfn is { Var: { } v }) a["var"] = v;
                else if (pfn is { } p) a["pfn"] = (long)p.Value;
                else if (at is not null) { a["map"] = at.Map; a["offset"] = (long)at.Offset.Value; }
                break;
            }
            case PfnOfOp p: a["map"] = p.At.Map; a["offset"] = (long)p.At.Offset.Value; a["save"] = p.Save; break;
            case UserfaultfdOp u: a["fd"] = u.Fd; a["features"] = u.Features.Bits; break;
            case UffdioRegisterOp u: a["uffd"] = u.Uffd; Range(u.At, -1); a["mode"] = u.Mode; break;
            case UffdioCopyOp u: a["uffd"] = u.Uffd; Range(u.At, -1); a["pattern"] = PatternJson(u.Pattern); break;
            case UffdioPoisonOp u: a["uffd"] = u.Uffd; Range(u.At, -1); break;
            case ThreadOp t: a["name"] = t.Name; break;
            case UffdioContinueOp u: a["uffd"] = u.Uffd; Range(u.At, -1); break;
            case UffdioWriteprotectOp u: a["uffd"] = u.Uffd; Range(u.At, -1); a["mode"] = u.Protect ? 1 : 0; break; // UFFDIO_WRITEPROTECT_MODE_WP
            case ShmgetOp g:
                a["shm"] = g.Shm; a["size"] = (long)g.Size.Value;
                a["flags"] = Bits(g.Flags, v => v switch { "SHM_HUGETLB" => 0x800, "SHM_HUGE_2MB" => 21L << 26, "SHM_HUGE_1GB" => 30L << 26, _ => 0 });
                break;
            case ShmatOp t: a["shm"] = t.Shm; a["name"] = t.Name; a["size"] = (long)ShmSize(sc, t.Shm); break;
            case ShmdtOp sd: a["map"] = sd.Map; break;
            case ShmRmidOp r: a["shm"] = r.Shm; break;
            case OpenOp op: a["path"] = op.Path; a["fd"] = op.Fd; a["create"] = op.Create ? 1 : 0; break;
            case UnlinkOp u: a["path"] = u.Path; break;
            case CheckOp or ExitOp: break;
            default: o["skip"] = $"'{s.Op}' is model-only"; break;
        }
        if (s.Expect?.Data is { } d) a["check"] = PatternJson(d);
        o["args"] = a;
        // pfns whose kpageflags an expectation (of any kernel) reads after the step
        var pfs = (s.Expect?.PageFlags ?? []).Concat((s.KernelExpects ?? []).SelectMany(k => k.Expect.PageFlags ?? [])).DistinctBy(p => p.Where).ToList();
        if (pfs.Count > 0)
            o["kpageflags"] = new JsonArray(pfs.Select(p => (JsonNode)new JsonObject { ["ref"] = p.Where, ["var"] = p.Var, ["add"] = p.PageOffset }).ToArray());
        return o;
    }

    /// <summary>The size of SysV segment <paramref name="shm"/> as shmget() makes it (rounded to the huge page size for SHM_HUGETLB).</summary>
    private static ulong ShmSize(Scenario sc, string shm)
    {
        var get = sc.Steps.Select(x => x.Call).OfType<ShmgetOp>().First(x => x.Shm == shm);
        ulong huge = (get.Flags.Bits & (30L << 26)) == 30L << 26 ? Units.GiB : 2 * Units.MiB;
        return (get.Flags.Bits & Kernel.SHM_HUGETLB) != 0 ? Units.AlignUp(get.Size.Value, huge) : Units.AlignUp(get.Size.Value, Units.PAGE_SIZE);
    }
}

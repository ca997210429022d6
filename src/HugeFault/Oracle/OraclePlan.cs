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
        var madv = sc.Steps.FirstOrDefault(s => s.Op == "madvise" && s.Args["advice"].Text is "MADV_SPLIT" or "MADV_COLLAPSE" or "MADV_REPAIR");
        if (madv is not null) return $"step {madv.Index} uses {madv.Args["advice"].Text}, which mainline does not have";
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
            if (s.Op == "fork" && !l.Contains(s.Args["child"].Text)) l.Add(s.Args["child"].Text);
            if (s.Op == "thread" && !l.Contains(s.Args["name"].Text)) l.Add(s.Args["name"].Text);
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
        foreach (var s in sc.Steps) steps.Add(Step(s, sc));
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

    private static ulong Size(Step s, string k, ulong dflt = 0) =>
        s.Args.TryGetValue(k, out var a) && ScenarioParser.TryParseSize(a.Text, out var v) ? v : dflt;

    private static long Flags(Step s, string k, Func<string, long> map)
    {
        if (!s.Args.TryGetValue(k, out var a)) return 0;
        long f = 0;
        foreach (var v in a.List ?? [a.Text]) f |= map(v);
        return f;
    }

    private static JsonObject PatternJson(string text)
    {
        Pattern.TryParse(text, out var p);
        var o = new JsonObject { ["zero"] = p.IsZero, ["seed"] = p.Seed };
        if (p.At is { } at) o["at"] = at;
        return o;
    }

    private static JsonObject Step(Step s, Scenario sc)
    {
        var a = new JsonObject();
        var o = new JsonObject { ["i"] = s.Index, ["op"] = s.Op };
        if (s.As is { } who) o["as"] = who;
        void Str(string k) { if (s.Args.TryGetValue(k, out var v)) a[k] = v.Text; }
        void Sz(string k, long dflt = 0) => a[k] = s.Args.ContainsKey(k) ? (long)Size(s, k) : dflt;
        switch (s.Op)
        {
            case "memfd_create":
                Str("name"); Str("fd");
                a["flags"] = Flags(s, "flags", v => v switch
                {
                    "MFD_CLOEXEC" => 1, "MFD_ALLOW_SEALING" => 2, "MFD_HUGETLB" => 4, "MFD_HUGE_2MB" => 21L << 26, "MFD_HUGE_1GB" => 30L << 26, _ => 0,
                });
                break;
            case "close": Str("fd"); break;
            case "ftruncate": Str("fd"); Sz("length"); break;
            case "fallocate":
                Str("fd"); Sz("offset"); Sz("length");
                a["mode"] = Flags(s, "mode", v => v == "FALLOC_FL_KEEP_SIZE" ? 1 : 2 | 1);
                break;
            case "lseek":
                Str("fd");
                a["offset"] = long.TryParse(s.Args["offset"].Text, out var lo) ? lo : (long)Size(s, "offset");
                a["whence"] = s.Args.TryGetValue("whence", out var wh) ? wh.Text switch { "SEEK_CUR" => 1, "SEEK_END" => 2, _ => 0 } : 0;
                break;
            case "read": Str("fd"); Sz("length"); break;
            case "pread": Str("fd"); Sz("length"); Sz("offset"); break;
            case "read_loop": Str("fd"); Sz("chunk"); break;
            case "mmap":
                Str("name"); Str("fd"); Sz("length"); Sz("offset");
                a["prot"] = s.Args.ContainsKey("prot") ? Flags(s, "prot", v => v switch { "PROT_READ" => 1, "PROT_WRITE" => 2, _ => 0 }) : 3;
                a["flags"] = Flags(s, "flags", v => v switch
                {
                    "MAP_SHARED" => 1, "MAP_PRIVATE" => 2, "MAP_ANONYMOUS" => 0x20, "MAP_HUGETLB" => 0x40000, "MAP_HUGE_2MB" => 21L << 26,
                    "MAP_HUGE_1GB" => 30L << 26, "MAP_NORESERVE" => 0x4000, "MAP_POPULATE" => 0x8000, _ => 0,
                });
                break;
            case "munmap": Str("map"); Sz("offset"); Sz("length", -1); break;
            case "madvise":
                Str("map"); Sz("offset"); Sz("length", (long)Units.PAGE_SIZE);
                a["advice"] = s.Args["advice"].Text switch { "MADV_DONTNEED" => 4, "MADV_REMOVE" => 9, "MADV_HWPOISON" => 100, "MADV_SOFT_OFFLINE" => 101, _ => -1 };
                break;
            case "fork": Str("child"); break;
            case "prctl":
                a["arg2"] = !s.Args.TryGetValue("arg2", out var a2) || a2.Text == "PR_MCE_KILL_CLEAR" ? 0 : 1;
                a["arg3"] = s.Args.TryGetValue("arg3", out var a3) ? a3.Text switch { "PR_MCE_KILL_EARLY" => 1, "PR_MCE_KILL_LATE" => 0, _ => 2 } : 0;
                break;
            case "sysctl":
                a["path"] = "/proc/sys/" + s.Args["name"].Text.Replace('.', '/');
                a["value"] = s.Args["value"].Text;
                break;
            case "nr_hugepages":
                a["path"] = $"/sys/kernel/mm/hugepages/hugepages-{(s.Args["size"].Text == "1G" ? 1048576 : 2048)}kB/nr_hugepages";
                a["value"] = s.Args["value"].Text;
                break;
            case "store":
            case "load":
                Str("map"); Sz("offset"); Sz("length", 1);
                if (s.Op == "store") a["pattern"] = PatternJson(s.Args.TryGetValue("pattern", out var pt) ? pt.Text : "p1");
                break;
            case "corrupt_pfn":
            case "unpoison_pfn":
                if (s.Args.TryGetValue("pfn", out var pf))
                {
                    if (pf.Text.StartsWith('$')) a["var"] = pf.Text[1..];
                    else a["pfn"] = (long)Size(s, "pfn");
                }
                else { Str("map"); Sz("offset"); }
                break;
            case "pfn_of": Str("map"); Sz("offset"); Str("save"); break;
            case "userfaultfd":
                Str("fd");
                a["features"] = Flags(s, "features", v => (long)Userfaultfd.FeatureBit(v));
                break;
            case "uffdio_register":
                Str("uffd"); Str("map"); Sz("offset"); Sz("length", -1);
                a["mode"] = s.Args.ContainsKey("mode") ? Flags(s, "mode", v => v switch { "MISSING" => 1, "WP" => 2, _ => 4 }) : 1;
                break;
            case "uffdio_copy":
            case "uffdio_poison":
                Str("uffd"); Str("map"); Sz("offset"); Sz("length", -1);
                if (s.Op == "uffdio_copy") a["pattern"] = PatternJson(s.Args.TryGetValue("pattern", out var cpat) ? cpat.Text : "zero");
                break;
            case "thread": Str("name"); break;
            case "uffdio_continue": Str("uffd"); Str("map"); Sz("offset"); Sz("length", -1); break;
            case "uffdio_writeprotect":
                Str("uffd"); Str("map"); Sz("offset"); Sz("length", -1);
                a["mode"] = !s.Args.TryGetValue("protect", out var pr) || pr.Text == "true" ? 1 : 0; // UFFDIO_WRITEPROTECT_MODE_WP
                break;
            case "shmget":
                Str("shm"); Sz("size");
                a["flags"] = Flags(s, "flags", v => v switch { "SHM_HUGETLB" => 0x800, "SHM_HUGE_2MB" => 21L << 26, "SHM_HUGE_1GB" => 30L << 26, _ => 0 });
                break;
            case "shmat": Str("shm"); Str("name"); a["size"] = (long)ShmSize(sc, s.Args["shm"].Text); break;
            case "shmdt": Str("map"); break;
            case "shm_rmid": Str("shm"); break;
            case "open": Str("path"); Str("fd"); a["create"] = !s.Args.TryGetValue("create", out var cr) || cr.Text != "false" ? 1 : 0; break;
            case "unlink": Str("path"); break;
            case "check":
            case "exit":
                break;
            default:
                o["skip"] = $"'{s.Op}' is model-only";
                break;
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
        var get = sc.Steps.First(x => x.Op == "shmget" && x.Args["shm"].Text == shm);
        ulong size = Size(get, "size");
        var flags = get.Args.TryGetValue("flags", out var f) ? f.List ?? [f.Text] : [];
        ulong huge = flags.Contains("SHM_HUGE_1GB") ? Units.GiB : 2 * Units.MiB;
        return flags.Contains("SHM_HUGETLB") ? Units.AlignUp(size, huge) : Units.AlignUp(size, Units.PAGE_SIZE);
    }
}

using System.Globalization;
using HugeFault.Fs;
using HugeFault.Mm;
using HugeFault.Virt;

namespace HugeFault.Scenarios;

// Each operation's arguments become the op's typed record here, at load time: every value the model could not
// honour is an error with its file:line:column, so the runner never parses text.
public static partial class ScenarioParser
{
    /// <summary>Limits on values the model honours (documented in docs/scenario-format.md).</summary>
    public static class Limits
    {
        /// <summary>Sizes are below 2^63 (the kernel's loff_t, and what a signed syscall return can carry).</summary>
        public const ulong MaxSize = long.MaxValue;
        /// <summary>vCPUs of one VM (KVM_MAX_VCPUS on x86-64 is 1024 before 6.x's 4096; the model runs each as a task).</summary>
        public const int MaxVcpus = 1024;
        /// <summary>guest_touch pages and migrate touches: the model runs each one.</summary>
        public const int MaxTouches = 10_000_000;
        /// <summary>Rates, bandwidths and times: positive and at most this (beyond it a model time wraps).</summary>
        public const double MaxReal = 1e9;
        /// <summary>Hugepage counts written to nr_hugepages (the kernel clamps to what it can allocate).</summary>
        public const long MaxPages = 1L << 40;
        /// <summary>
        /// Guest RAM on 4 KiB pages, all VMs of a scenario together: the model populates it at vm_create as one folio per
        /// page (a 4 GiB guest is a million folios and about 3 s of work), so larger 4K-backed guests are refused rather
        /// than run for minutes. 1G- and 2M-backed guests have no such limit.
        /// </summary>
        public const ulong MaxSmallPageGuestRam = 8UL << 30;
    }

    private sealed class ArgReader(string op, IReadOnlyDictionary<string, Arg> a, List<ScenarioError> errors)
    {
        private void E(Arg x, string msg, string? hint = null) => errors.Add(new ScenarioError(x.Pos, msg, hint));
        private const string SizeHint = "use 4096, 0x1000, 4K, 2M, 1G or sums like 1G-4K (the result must be 0 or more and below 2^63)";

        public bool Has(string k) => a.ContainsKey(k);
        /// <summary>A name (fd, mapping, process, variable); required arguments were checked already ("" when missing).</summary>
        public string Str(string k) => a.TryGetValue(k, out var x) ? x.Text : "";
        public string? Opt(string k) => a.TryGetValue(k, out var x) ? x.Text : null;

        public SizeArg Size(string k) => OptSize(k) ?? SizeArg.Zero;

        public SizeArg? OptSize(string k)
        {
            if (!a.TryGetValue(k, out var x)) return null;
            if (TryParseSize(x.Text, out var v)) return new SizeArg(v, x.Text);
            E(x, $"'{k}' value '{x.Text}' is not a size", SizeHint);
            return new SizeArg(0, x.Text);
        }

        /// <summary>A signed number or a size (sysctl values, lseek offsets).</summary>
        public long Number(string k, long min = long.MinValue, long max = long.MaxValue, string? what = null)
        {
            if (!a.TryGetValue(k, out var x)) return 0;
            long v;
            if (long.TryParse(x.Text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var lv)) v = lv;
            else if (TryParseSize(x.Text, out var sv)) v = (long)sv;
            else { E(x, $"{what ?? $"'{k}'"} must be a number, not '{x.Text}'", "a whole number, 0x hex or a size such as 2M"); return 0; }
            if (v < min || v > max) { E(x, $"{what ?? $"'{k}'"} {v} is outside {min}..{max}", $"use a value from {min} to {max}"); return 0; }
            return v;
        }

        public int Int(string k, int dflt, int min, int max)
        {
            if (!a.TryGetValue(k, out var x)) return dflt;
            if (int.TryParse(x.Text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max) return v;
            E(x, $"'{k}' must be a whole number from {min} to {max}, not '{x.Text}'", $"{k}: {Math.Max(min, Math.Min(max, dflt))}");
            return dflt;
        }

        /// <summary>A real number in (0, max] (or [0, 1] for fractions).</summary>
        public double Real(string k, double dflt, bool fraction = false)
        {
            if (!a.TryGetValue(k, out var x)) return dflt;
            bool ok = double.TryParse(x.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v);
            if (fraction && ok && v >= 0 && v <= 1) return v;
            if (!fraction && ok && v > 0 && v <= Limits.MaxReal) return v;
            E(x, fraction ? $"'{k}' must be between 0 and 1, not '{x.Text}'" : $"'{k}' must be a positive number up to {Limits.MaxReal:0e0}, not '{x.Text}'",
                $"{k}: {dflt.ToString(CultureInfo.InvariantCulture)}");
            return dflt;
        }

        public bool Bool(string k, bool dflt) => Choice(k, dflt, ("true", true), ("false", false));

        public T Choice<T>(string k, T dflt, params (string Name, T Value)[] map)
        {
            if (!a.TryGetValue(k, out var x)) return dflt;
            foreach (var (n, v) in map) if (n == x.Text) return v;
            E(x, $"'{x.Text}' is not a valid {k} for {op}", "use one of: " + string.Join(", ", map.Select(m => m.Name)));
            return dflt;
        }

        /// <summary>One flag or a list of them, OR-ed.</summary>
        public FlagsArg Flags(string k, FlagsArg dflt, params (string Name, long Bit)[] map)
        {
            if (!a.TryGetValue(k, out var x)) return dflt;
            long bits = 0;
            foreach (var v in x.List ?? [x.Text])
            {
                int i = Array.FindIndex(map, m => m.Name == v);
                if (i < 0) E(x, $"'{v}' is not a valid {k} for {op}", "use one of: " + string.Join(", ", map.Select(m => m.Name)));
                else bits |= map[i].Bit;
            }
            return new FlagsArg(bits, x.Text);
        }

        public Pattern Pat(string k, string dflt)
        {
            var t = Opt(k) ?? dflt;
            if (Pattern.TryParse(t, out var p)) return p;
            E(a[k], $"pattern '{t}' is not valid", "use a name (p1), name@offset (p1@0x1000) or zero");
            return new Pattern(dflt, null);
        }

        public PfnArg? Pfn()
        {
            if (!a.TryGetValue("pfn", out var x)) return null;
            if (x.Text.StartsWith('$')) return new PfnArg(x.Text[1..], 0);
            if (TryParseSize(x.Text, out var v) && v <= ulong.MaxValue >> Units.PAGE_SHIFT) return new PfnArg(null, v);
            E(x, $"'pfn' must be a number or $var, not '{x.Text}'", "pfn: $p (saved by pfn_of) or a page frame number");
            return new PfnArg(null, 0);
        }

        public MapRange Range(bool withLength = true) => new(Str("map"), Size("offset"), withLength ? OptSize("length") : null);
    }

    private static readonly (string, long)[] MemfdFlags =
    [
        ("MFD_CLOEXEC", Memfd.MFD_CLOEXEC), ("MFD_ALLOW_SEALING", Memfd.MFD_ALLOW_SEALING), ("MFD_HUGETLB", Memfd.MFD_HUGETLB),
        ("MFD_HUGE_2MB", Memfd.MFD_HUGE_2MB), ("MFD_HUGE_1GB", Memfd.MFD_HUGE_1GB), ("MFD_MF_KEEP_UE_MAPPED", Memfd.MFD_MF_KEEP_UE_MAPPED),
    ];
    private static readonly (string, long)[] MmapFlags =
    [
        ("MAP_SHARED", Mman.MAP_SHARED), ("MAP_PRIVATE", Mman.MAP_PRIVATE), ("MAP_ANONYMOUS", Mman.MAP_ANONYMOUS), ("MAP_HUGETLB", Mman.MAP_HUGETLB),
        ("MAP_HUGE_2MB", Mman.MAP_HUGE_2MB), ("MAP_HUGE_1GB", Mman.MAP_HUGE_1GB), ("MAP_NORESERVE", Mman.MAP_NORESERVE), ("MAP_POPULATE", Mman.MAP_POPULATE),
    ];
    private static readonly (string, int)[] Advices =
    [
        ("MADV_DONTNEED", Mman.MADV_DONTNEED), ("MADV_REMOVE", Mman.MADV_REMOVE), ("MADV_HWPOISON", Mman.MADV_HWPOISON),
        ("MADV_SOFT_OFFLINE", Mman.MADV_SOFT_OFFLINE), ("MADV_SPLIT", Mman.MADV_SPLIT), ("MADV_COLLAPSE", Mman.MADV_COLLAPSE), ("MADV_REPAIR", Policies.MadvRepair.MADV_REPAIR),
    ];
    private static readonly string[] UffdFeatures =
    [
        "UFFD_FEATURE_POISON", "UFFD_FEATURE_MISSING_HUGETLBFS", "UFFD_FEATURE_MINOR_HUGETLBFS", "UFFD_FEATURE_MINOR_SHMEM", "UFFD_FEATURE_SIGBUS",
        "UFFD_FEATURE_EVENT_FORK", "UFFD_FEATURE_EXACT_ADDRESS", "UFFD_FEATURE_PAGEFAULT_FLAG_WP", "UFFD_FEATURE_WP_HUGETLBFS_SHMEM",
    ];

    /// <summary>The typed record of operation <paramref name="op"/> (its required arguments were checked; missing ones read as empty).</summary>
    private static StepOp BuildOp(string op, IReadOnlyDictionary<string, Arg> args, List<ScenarioError> errors)
    {
        var r = new ArgReader(op, args, errors);
        var no = new FlagsArg(0, "0");
        switch (op)
        {
            case "memfd_create": return new MemfdCreateOp(r.Str("name"), r.Str("fd"), r.Flags("flags", no, MemfdFlags));
            case "open": return new OpenOp(r.Str("path"), r.Str("fd"), r.Opt("create") != "false");
            case "close": return new CloseOp(r.Str("fd"));
            case "unlink": return new UnlinkOp(r.Str("path"));
            case "ftruncate": return new FtruncateOp(r.Str("fd"), r.Size("length"));
            case "fallocate": return new FallocateOp(r.Str("fd"), r.Flags("mode", no, ("FALLOC_FL_KEEP_SIZE", Memfd.FALLOC_FL_KEEP_SIZE), ("FALLOC_FL_PUNCH_HOLE", Memfd.FALLOC_FL_PUNCH_HOLE)), r.Size("offset"), r.Size("length"));
            case "lseek": return new LseekOp(r.Str("fd"), r.Number("offset", what: "lseek offset"), r.Str("offset"), r.Choice("whence", 0, ("SEEK_SET", 0), ("SEEK_CUR", 1), ("SEEK_END", 2)), r.Opt("whence") ?? "SEEK_SET");
            case "read": return new ReadOp(r.Str("fd"), r.Size("length"));
            case "pread": return new PreadOp(r.Str("fd"), r.Size("length"), r.Size("offset"));
            case "read_loop":
            {
                var chunk = r.Size("chunk");
                if (chunk.Value == 0 && args.TryGetValue("chunk", out var c)) errors.Add(new ScenarioError(c.Pos, "read_loop chunk must be at least 1 byte", "chunk: 4K"));
                return new ReadLoopOp(r.Str("fd"), chunk);
            }
            case "mmap":
                return new MmapOp(r.Str("name"), r.Size("length"),
                    r.Flags("prot", new FlagsArg(Mman.PROT_READ | Mman.PROT_WRITE, "PROT_READ|PROT_WRITE"), ("PROT_READ", Mman.PROT_READ), ("PROT_WRITE", Mman.PROT_WRITE), ("PROT_NONE", 0)),
                    r.Flags("flags", no, MmapFlags), r.Opt("fd"), r.Size("offset"));
            case "munmap": return new MunmapOp(r.Range());
            case "madvise": return new MadviseOp(r.Range(), r.Choice("advice", -1, Advices), r.Str("advice"));
            case "store": return new StoreOp(r.Range(), r.Pat("pattern", "p1"));
            case "load": return new LoadOp(r.Range());
            case "kvm_guest_access": return new KvmGuestAccessOp(r.Range());
            case "pfn_of": return new PfnOfOp(r.Range(withLength: false), r.Str("save"));
            case "fork": return new ForkOp(r.Str("child"));
            case "thread": return new ThreadOp(r.Str("name"));
            case "exit": return new ExitOp();
            case "prctl":
            {
                r.Choice("option", "", ("PR_MCE_KILL", ""));
                var arg2 = r.Choice("arg2", "PR_MCE_KILL_CLEAR", ("PR_MCE_KILL_SET", "PR_MCE_KILL_SET"), ("PR_MCE_KILL_CLEAR", "PR_MCE_KILL_CLEAR"));
                var arg3 = r.Choice("arg3", MceKillPolicy.Default, ("PR_MCE_KILL_EARLY", MceKillPolicy.Early), ("PR_MCE_KILL_LATE", MceKillPolicy.Late), ("PR_MCE_KILL_DEFAULT", MceKillPolicy.Default));
                return new PrctlOp(arg2 == "PR_MCE_KILL_CLEAR" ? MceKillPolicy.Default : arg3, r.Opt("arg2"), r.Opt("arg3"));
            }
            case "sysctl":
            {
                var name = r.Choice("name", "", ("vm.memory_failure_early_kill", "vm.memory_failure_early_kill"), ("vm.memory_failure_recovery", "vm.memory_failure_recovery"),
                    ("vm.nr_hugepages", "vm.nr_hugepages"), ("vm.nr_overcommit_hugepages", "vm.nr_overcommit_hugepages"), ("vm.enable_soft_offline", "vm.enable_soft_offline"));
                bool pages = name is "vm.nr_hugepages" or "vm.nr_overcommit_hugepages";
                return new SysctlOp(name, r.Number("value", pages ? 0 : long.MinValue, pages ? Limits.MaxPages : long.MaxValue));
            }
            case "nr_hugepages": return new NrHugepagesOp(r.Choice("size", "2M", ("2M", "2M"), ("1G", "1G")), r.Number("value", 0, Limits.MaxPages));
            case "hw_error":
            {
                var kind = r.Choice("kind", PoisonKind.Permanent, ("permanent", PoisonKind.Permanent), ("transient", PoisonKind.Transient), ("deposited", PoisonKind.Deposited));
                var detect = r.Choice("detect", r.Has("as") ? "consume" : "scrub", ("consume", "consume"), ("scrub", "scrub"), ("none", "none"));
                return new HwErrorOp(r.OptSize("phys"), r.Pfn(), r.Opt("map"), r.Opt("fd"), r.Size("offset"), kind, detect);
            }
            case "corrupt_pfn": return new CorruptPfnOp(r.Pfn(), r.Has("map") ? r.Range(withLength: false) : null);
            case "unpoison_pfn": return new UnpoisonPfnOp(r.Pfn(), r.Has("map") ? r.Range(withLength: false) : null);
            case "userfaultfd": return new UserfaultfdOp(r.Str("fd"), r.Flags("features", no, UffdFeatures.Select(f => (f, (long)Userfaultfd.FeatureBit(f))).ToArray()));
            case "uffdio_register": return new UffdioRegisterOp(r.Str("uffd"), r.Range(), (int)r.Flags("mode", new FlagsArg(1, "MISSING"), ("MISSING", 1), ("WP", 2), ("MINOR", 4)).Bits);
            case "uffdio_copy": return new UffdioCopyOp(r.Str("uffd"), r.Range(), r.Pat("pattern", "zero"));
            case "uffdio_poison": return new UffdioPoisonOp(r.Str("uffd"), r.Range());
            case "uffdio_continue": return new UffdioContinueOp(r.Str("uffd"), r.Range());
            case "uffdio_writeprotect": return new UffdioWriteprotectOp(r.Str("uffd"), r.Range(), r.Bool("protect", true));
            case "vm_create": return VmCreate(r, args, errors);
            case "guest_access":
                return new GuestAccessOp(r.Str("vm"), r.Size("gpa").Value, r.OptSize("length")?.Value, r.Int("vcpu", 0, 0, Limits.MaxVcpus - 1), r.Bool("write", false), r.Pat("pattern", "guest"));
            case "guest_touch":
                return new GuestTouchOp(r.Str("vm"), r.Size("gpa").Value, r.Size("length").Value, r.Int("pages", 0, 0, Limits.MaxTouches), r.Real("rate", 1000), r.Int("vcpu", 0, 0, Limits.MaxVcpus - 1));
            case "vm_reset": return new VmResetOp(r.Str("vm"));
            case "migrate":
                return new MigrateOp(r.Str("vm"), new MigrationConfig
                {
                    Mode = r.Choice("mode", MigrationMode.Precopy, ("precopy", MigrationMode.Precopy), ("postcopy", MigrationMode.Postcopy)),
                    OnPoison = r.Choice("on_poison", PoisonHandling.Refuse, ("refuse", PoisonHandling.Refuse), ("fake-poison", PoisonHandling.FakePoison)),
                    BandwidthGbps = r.Real("bandwidth_gbps", 10), RttUs = r.Real("rtt_us", 100), DirtyBytesPerSecond = r.Real("dirty_mbps", 200) * 1e6,
                    PostcopyTouches = r.Int("touches", 2000, 0, Limits.MaxTouches), MaxDowntimeMs = r.Real("max_downtime_ms", 300), Preempt = r.Bool("preempt", true),
                });
            case "shmget": return new ShmgetOp(r.Str("shm"), r.Size("size"), r.Flags("flags", new FlagsArg(0, ""), ("SHM_HUGETLB", Kernel.SHM_HUGETLB), ("SHM_HUGE_2MB", 21 << 26), ("SHM_HUGE_1GB", 30 << 26)));
            case "shmat": return new ShmatOp(r.Str("shm"), r.Str("name"));
            case "shmdt": return new ShmdtOp(r.Str("map"));
            case "shm_rmid": return new ShmRmidOp(r.Str("shm"));
            default: return new CheckOp();
        }
    }

    private static VmCreateOp VmCreate(ArgReader r, IReadOnlyDictionary<string, Arg> args, List<ScenarioError> errors)
    {
        ulong ram = r.OptSize("ram")?.Value ?? 4 * Units.GiB;
        ulong ps = r.Choice("page_size", Units.GiB, ("4K", Units.PAGE_SIZE), ("2M", 2 * Units.MiB), ("1G", Units.GiB));
        if (args.TryGetValue("ram", out var ra) && (ram == 0 || ram % ps != 0))
            errors.Add(new ScenarioError(ra.Pos, $"vm_create ram '{ra.Text}' is not a positive multiple of the page size {Units.Size(ps)}", "ram: 4G with page_size: 1G"));
        var guest = new GuestConfig
        {
            KernelFraction = r.Real("kernel_fraction", 0.05, fraction: true),
            MaxMces = r.Has("max_mces") ? r.Int("max_mces", 0, 0, Limits.MaxTouches) : null,
            MceWindowNs = (long)(r.Real("mce_window_s", 60) * 1e9),
            Amd = r.Bool("amd", false), Enlightened = r.Bool("enlightened", false),
        };
        var qemu = new Version(10, 0);
        if (args.TryGetValue("qemu", out var q))
        {
            if (Version.TryParse(q.Text, out var qv) && qv.Major < 100) qemu = qv;
            else errors.Add(new ScenarioError(q.Pos, $"qemu '{q.Text}' is not a QEMU version", "qemu: \"10.0\""));
        }
        Pattern? populate = r.Opt("populate") == "none" ? null : r.Pat("populate", "guest");
        return new VmCreateOp(r.Str("name"), ram, ps, r.Int("vcpus", 1, 1, Limits.MaxVcpus), guest, qemu, populate);
    }
}

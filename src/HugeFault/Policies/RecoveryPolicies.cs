namespace HugeFault.Policies;

/// <summary>The registry of recovery policies by name.</summary>
public static class RecoveryPolicies
{
    private static readonly Dictionary<string, (string Summary, Func<IReadOnlyDictionary<string, string>, IRecoveryPolicy> Make)> Registry = new()
    {
        ["mainline"] = ("Linux today: poison and unmap the whole huge page (si_addr_lsb = 30)", p => new MainlinePolicy(p)),
        ["hgm"] = ("HugeTLB high-granularity mapping: unmap only the bad 4 KiB in every mapper (si_addr_lsb = 12)", p => new HgmPolicy(p, fullSplit: false)),
        ["vma-convert"] = ("convert the VMA range away from hugetlb; 4 KiB PTEs; bad 4 KiB poisoned", p => new VmaConvertPolicy(p)),
        ["userspace-migrate"] = ("mainline, then the VMM preads the good data into tmpfs, remaps, UFFDIO_POISONs the bad 4 KiB", p => new UserspaceMigratePolicy(p)),
        ["repair"] = ("report the cacheline (lsb 6); MADV_REPAIR zeroes it if not permanent; else fall back", p => new RepairPolicy(p)),
        ["copy-around"] = ("kernel copies the good lines to a new huge page and swaps it in; bad 4 KiB fake-poisoned", p => new CopyAroundPolicy(p)),
        ["keep-mapped"] = ("MFD_MF_KEEP_UE_MAPPED: keep the folio mapped, signal lsb 12, offline on release", p => new KeepMappedPolicy(p)),
        ["hgm-full-split"] = ("HGM that splits the whole huge page to 4 KiB PTEs (what the minimal split saves)", p => new HgmPolicy(p, fullSplit: true)),
    };

    private static readonly string[] Order = ["mainline", "hgm", "hgm-full-split", "vma-convert", "userspace-migrate", "repair", "copy-around", "keep-mapped"];

    /// <summary>Registered at run time and listed (in registration order) after the built-in ones.</summary>
    private static readonly List<string> Added = new();
    /// <summary>Registered at run time but left out of <see cref="Names"/> (usable by name).</summary>
    private static readonly HashSet<string> Unlisted = new();
    private static readonly object Lock = new();

    /// <summary>The policy every other is compared with: Linux as it is.</summary>
    public static string Baseline => "mainline";

    /// <summary>Policy names in the order the design debate lists them (mainline first), then policies registered at run time.</summary>
    public static IReadOnlyList<string> Names
    {
        get { lock (Lock) return Order.Where(Registry.ContainsKey).Concat(Registry.Keys.Where(k => !Order.Contains(k) && !Added.Contains(k) && !Unlisted.Contains(k))).Concat(Added).ToList(); }
    }

    public static string Summary(string name) { lock (Lock) return Registry[name].Summary; }
    public static bool Exists(string name) { lock (Lock) return Registry.ContainsKey(name); }

    public static IRecoveryPolicy Create(string name, IReadOnlyDictionary<string, string> parameters)
    {
        (string Summary, Func<IReadOnlyDictionary<string, string>, IRecoveryPolicy> Make) e;
        lock (Lock)
            if (!Registry.TryGetValue(name, out e))
                throw new ArgumentException($"unknown policy '{name}' (known: {string.Join(", ", Registry.Keys)})");
        return e.Make(parameters);
    }

    /// <summary>
    /// Adds a policy defined outside this library (a plug-in, a test): from then on it runs wherever a policy name is
    /// accepted (scenarios, <c>compare</c>, the fleet, whose effect table asks its kernel model). <paramref name="listed"/>
    /// = false keeps it out of <see cref="Names"/> (the default lists of <c>compare</c> and <c>fleet</c>).
    /// </summary>
    public static void Register(string name, string summary, Func<IReadOnlyDictionary<string, string>, IRecoveryPolicy> make, bool listed = true)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("a policy needs a name");
        lock (Lock)
        {
            if (Registry.ContainsKey(name)) throw new ArgumentException($"policy '{name}' is already registered");
            Registry[name] = (summary, make);
            if (listed) Added.Add(name); else Unlisted.Add(name);
        }
    }
}

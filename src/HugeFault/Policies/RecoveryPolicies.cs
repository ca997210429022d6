namespace HugeFault.Policies;

/// <summary>The registry of recovery policies by name.</summary>
public static class RecoveryPolicies
{
    private static readonly Dictionary<string, (string Summary, Func<IReadOnlyDictionary<string, string>, IRecoveryPolicy> Make)> Registry = new()
    {
        ["mainline"] = ("Linux today: poison and unmap the whole huge page (si_addr_lsb = 30)", p => new MainlinePolicy(p)),
        ["hgm"] = ("HugeTLB high-granularity mapping as intended (an extrapolation: the posted series never unmapped 4 KiB): unmap only the bad 4 KiB in every mapper (si_addr_lsb = 12)", p => new HgmPolicy(p, fullSplit: false)),
        ["hgm-v2"] = ("HGM exactly as posted (v2, Feb 2023): MADV_SPLIT + 4 KiB UFFDIO_CONTINUE, but memory failure poisons the whole folio in every mapping; MADV_COLLAPSE skips poisoned folios", p => new HgmV2Policy(p)),
        ["vma-convert"] = ("convert the VMA range away from hugetlb; 4 KiB PTEs; bad 4 KiB poisoned", p => new VmaConvertPolicy(p)),
        ["userspace-migrate"] = ("mainline, then the VMM preads the good data into tmpfs, remaps, UFFDIO_POISONs the bad 4 KiB", p => new UserspaceMigratePolicy(p)),
        ["repair"] = ("report the cacheline (lsb 6); MADV_REPAIR zeroes it if not permanent; else fall back", p => new RepairPolicy(p)),
        ["copy-around"] = ("kernel copies the good lines to a new huge page and swaps it in; bad 4 KiB fake-poisoned", p => new CopyAroundPolicy(p)),
        ["keep-mapped"] = ("MFD_MF_KEEP_UE_MAPPED: keep the folio mapped, signal lsb 12, offline on release", p => new KeepMappedPolicy(p)),
        ["hgm-full-split"] = ("HGM that splits the whole huge page to 4 KiB PTEs (what the minimal split saves)", p => new HgmPolicy(p, fullSplit: true)),
    };

    private static readonly string[] Order = ["mainline", "hgm", "hgm-v2", "hgm-full-split", "vma-convert", "userspace-migrate", "repair", "copy-around", "keep-mapped"];

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

    /// <summary>
    /// Where a policy's behaviour comes from: "mainline" (Linux today), "as posted: …" (a series' own code and
    /// selftest), or "extrapolation: …" (a design its authors described but never posted); for list and the report.
    /// </summary>
    public static string Provenance(string name) => Provenances.TryGetValue(name, out var p) ? p : "design sketch (no patch series)";

    private static readonly Dictionary<string, string> Provenances = new()
    {
        ["mainline"] = "mainline (checked against Linux 6.1 and 6.12)",
        ["hgm"] = "extrapolation: HGM as intended (4 KiB unmapping left out of the posted v1/v2 series; drafted in Jiaqi Yan's 2023 RFC, never merged)",
        ["hgm-full-split"] = "extrapolation: HGM as intended, remapping the whole folio at 4 KiB",
        ["hgm-v2"] = "as posted: HGM v2 (lore 20230218002819.1486479-1-jthoughton@google.com), selftest hugetlb-hgm.c",
        ["keep-mapped"] = "as posted: MFD_MF_KEEP_UE_MAPPED v3 (lore 20260203192352.2674184-1-jiaqiyan@google.com), selftest hugetlb-mfr.c",
    };

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
    /// <paramref name="parameters"/> describes the <c>policy_params</c> it takes beyond <c>report</c> (scenarios are checked against it).
    /// </summary>
    public static void Register(string name, string summary, Func<IReadOnlyDictionary<string, string>, IRecoveryPolicy> make, bool listed = true,
        IReadOnlyList<PolicyParameter>? parameters = null)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("a policy needs a name");
        lock (Lock)
        {
            if (Registry.ContainsKey(name)) throw new ArgumentException($"policy '{name}' is already registered");
            Registry[name] = (summary, make);
            if (parameters is { Count: > 0 }) Parameters[name] = [.. parameters];
            if (listed) Added.Add(name); else Unlisted.Add(name);
        }
    }

    /// <summary>What <c>hugefault list</c> and the report say about a policy: parameters with defaults, when it falls back, whether it is an extrapolation.</summary>
    public static PolicyInfo Describe(string name)
    {
        var ps = new List<PolicyParameter> { Report };
        if (Parameters.TryGetValue(name, out var extra)) ps.AddRange(extra);
        return new PolicyInfo(name, Summary(name), ps, FallsBack.GetValueOrDefault(name), Provenance(name).StartsWith("extrapolation", StringComparison.Ordinal));
    }

    /// <summary>Every policy takes <c>report</c> (RecoveryPolicyBase).</summary>
    private static readonly PolicyParameter Report = new("report", "native", "native|hugepage|page|cacheline: how precisely si_addr/si_addr_lsb report the error",
        ParameterKind.Choice, ["native", "hugepage", "page", "cacheline", "huge", "4k", "4K", "line"]);

    /// <summary>
    /// Checks parameters against policy <paramref name="name"/>'s description (and, for a parameter naming another
    /// policy, that policy's, since the same parameters are passed on to it): each problem as (key, whether the value
    /// or the key is wrong, message, hint). A key no policy of the chain declares, a value outside the parameter's
    /// kind, and a fallback chain that comes back to a policy already in it are problems.
    /// </summary>
    public static IEnumerable<(string Key, bool OnValue, string Message, string Hint)> CheckParameters(string name, IReadOnlyDictionary<string, string> parameters)
    {
        var chain = new List<string> { name };
        var declared = new Dictionary<string, PolicyParameter>();
        var problems = new List<(string, bool, string, string)>();
        for (string cur = name; ;)
        {
            string? next = null;
            foreach (var p in Describe(cur).Parameters)
            {
                declared.TryAdd(p.Name, p);
                if (p.Kind != ParameterKind.Policy || !parameters.TryGetValue(p.Name, out var v)) continue;
                if (!Exists(v)) { problems.Add((p.Name, true, $"{cur}: {p.Name} '{v}' is not a policy", "known: " + string.Join(", ", Names))); continue; }
                if (chain.Contains(v))
                {
                    problems.Add((p.Name, true, $"{p.Name} '{v}' makes {string.Join(" → ", chain.Append(v))} a loop (the parameters, this one included, are passed on to the {p.Name} policy)",
                        $"choose a {p.Name} that has no {p.Name} of its own, e.g. mainline or hgm"));
                    continue;
                }
                next = v;
            }
            if (next is null) break;
            chain.Add(next); cur = next;
        }
        foreach (var (k, v) in parameters)
        {
            if (!declared.TryGetValue(k, out var p))
            {
                problems.Add((k, false, $"policy {name} has no parameter '{k}'", "parameters: " + string.Join(", ", declared.Keys)));
                continue;
            }
            bool ok = p.Kind switch
            {
                ParameterKind.Bool => v is "true" or "false",
                ParameterKind.Choice => p.Choices!.Contains(v),
                ParameterKind.PositiveNumber => double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) && d > 0 && double.IsFinite(d),
                _ => true,
            };
            if (!ok)
                problems.Add((k, true, $"{k} '{v}' is not valid for policy {name}", p.Kind switch
                {
                    ParameterKind.Bool => "true or false",
                    ParameterKind.Choice => "one of: " + string.Join(", ", p.Choices!),
                    _ => "a positive number",
                }));
        }
        return problems;
    }

    private static readonly Dictionary<string, PolicyParameter[]> Parameters = new()
    {
        ["repair"] =
        [
            new("auto", "true", "the SIGBUS handler asks for MADV_REPAIR by itself", ParameterKind.Bool),
            new("enlightened", "false", "the guest accepts 64 zeroed bytes (else guest memory is never repaired)", ParameterKind.Bool),
            new("fallback", "mainline", "policy for what cannot be repaired", ParameterKind.Policy),
        ],
        ["copy-around"] =
        [
            new("bad_line", "fake-poison", "fake-poison|zero: what the bad lines become in the new page", ParameterKind.Choice, ["fake-poison", "zero"]),
            new("fallback", "mainline", "policy when no free huge page is left", ParameterKind.Policy),
        ],
        ["userspace-migrate"] = [new("bandwidth_gbps", "10", "copy bandwidth, GB/s (time the range is inaccessible)", ParameterKind.PositiveNumber)],
        ["keep-mapped"] = [new("require_flag", "false", "only memfds created with MFD_MF_KEEP_UE_MAPPED keep the folio mapped", ParameterKind.Bool)],
    };

    private static readonly Dictionary<string, string> FallsBack = new()
    {
        ["hgm"] = "private (MAP_PRIVATE) mappings: mainline",
        ["hgm-full-split"] = "private (MAP_PRIVATE) mappings: mainline",
        ["repair"] = "permanent poison, or guest memory without enlightened=true: fallback",
        ["copy-around"] = "no free huge page in the pool: fallback",
        ["keep-mapped"] = "anonymous folios (or files without the flag when require_flag=true): mainline",
        ["vma-convert"] = "new mappers after the conversion: mainline",
    };

}

/// <summary>What values a policy parameter takes.</summary>
public enum ParameterKind
{
    /// <summary>Any text.</summary>
    Text,
    /// <summary>true or false.</summary>
    Bool,
    /// <summary>One of <see cref="PolicyParameter.Choices"/>.</summary>
    Choice,
    /// <summary>A finite number above zero.</summary>
    PositiveNumber,
    /// <summary>The name of another policy (which gets the same parameters).</summary>
    Policy,
}

/// <summary>One policy parameter (a scenario's <c>host.policy_params</c> key), its default, meaning and the values it takes.</summary>
public sealed record PolicyParameter(string Name, string Default, string Description, ParameterKind Kind = ParameterKind.Text, IReadOnlyList<string>? Choices = null);

/// <summary>
/// A policy's description for listings and reports: <c>FallsBackWhen</c> says when the design cannot act and another
/// path decides (null: never); <c>Extrapolation</c> marks a design modelled as intended, beyond what was posted.
/// </summary>
public sealed record PolicyInfo(string Name, string Summary, IReadOnlyList<PolicyParameter> Parameters, string? FallsBackWhen, bool Extrapolation);

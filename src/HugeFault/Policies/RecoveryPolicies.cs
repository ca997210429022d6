namespace HugeFault.Policies;

/// <summary>
/// The registry of recovery policies by name. It holds no policy's metadata: each policy declares its own
/// <see cref="PolicyDescriptor"/> in its own file, found here at compile time (a source generator lists them), so a new design is one
/// file under Policies/. <see cref="Order"/> only places the built-in ones in the order the design debate lists them
/// (a policy not named there comes after them, by name); policies defined elsewhere (a plug-in, a test) join with
/// <see cref="Register(PolicyDescriptor, bool)"/>.
/// </summary>
public static partial class RecoveryPolicies
{
    private static readonly string[] Order = ["mainline", "hgm", "hgm-v2", "hgm-full-split", "vma-convert", "userspace-migrate", "repair", "copy-around", "keep-mapped"];

    /// <summary>
    /// Every <c>public static readonly PolicyDescriptor</c> field of a public policy class (an <see cref="IRecoveryPolicy"/>)
    /// in this assembly: <c>Declared()</c> is written at compile time by HugeFault.Generators' PolicyRegistryGenerator
    /// (what a reflection scan of the assembly would find, also in a trimmed or Native AOT executable).
    /// </summary>
    private static readonly Dictionary<string, PolicyDescriptor> Registry = Declared().ToDictionary(d => d.Name);

    /// <summary>Built-in policies in listing order: <see cref="Order"/>, then the rest by name.</summary>
    private static readonly string[] BuiltIn = [.. Order.Where(Registry.ContainsKey), .. Registry.Keys.Where(k => !Order.Contains(k)).Order(StringComparer.Ordinal)];

    /// <summary>Registered at run time and listed (in registration order) after the built-in ones.</summary>
    private static readonly List<string> Added = new();
    private static readonly object Lock = new();

    /// <summary>The policy every other is compared with: Linux as it is.</summary>
    public static string Baseline => "mainline";

    /// <summary>Policy names in the order the design debate lists them (mainline first), then policies registered at run time.</summary>
    public static IReadOnlyList<string> Names
    {
        get { lock (Lock) return [.. BuiltIn, .. Added]; }
    }

    /// <summary>A policy's own description (its file's <see cref="PolicyDescriptor"/>).</summary>
    public static PolicyDescriptor Get(string name)
    {
        lock (Lock)
            return Registry.TryGetValue(name, out var d) ? d
                : throw new ArgumentException($"unknown policy '{name}' (known: {string.Join(", ", Registry.Keys)})");
    }

    public static string Summary(string name) => Get(name).Summary;
    public static bool Exists(string name) { lock (Lock) return Registry.ContainsKey(name); }

    /// <summary>
    /// Where a policy's behaviour comes from: "mainline" (Linux today), "as posted: …" (a series' own code and
    /// selftest), or "extrapolation: …" (a design its authors described but never posted); for list and the report.
    /// </summary>
    public static string Provenance(string name) => Get(name).Provenance;

    public static IRecoveryPolicy Create(string name, IReadOnlyDictionary<string, string> parameters) => Get(name).Make(parameters);

    /// <summary>
    /// Adds a policy defined outside this library (a plug-in, a test): from then on it runs wherever a policy name is
    /// accepted (scenarios, <c>compare</c>, the fleet, whose effect table asks its kernel model). <paramref name="listed"/>
    /// = false keeps it out of <see cref="Names"/> (the default lists of <c>compare</c> and <c>fleet</c>).
    /// </summary>
    public static void Register(PolicyDescriptor policy, bool listed = true)
    {
        if (string.IsNullOrWhiteSpace(policy.Name)) throw new ArgumentException("a policy needs a name");
        lock (Lock)
        {
            if (!Registry.TryAdd(policy.Name, policy)) throw new ArgumentException($"policy '{policy.Name}' is already registered");
            if (listed) Added.Add(policy.Name);
        }
    }

    /// <summary>The same, from its parts (<paramref name="parameters"/>: the <c>policy_params</c> it takes beyond <c>report</c>).</summary>
    public static void Register(string name, string summary, Func<IReadOnlyDictionary<string, string>, IRecoveryPolicy> make, bool listed = true,
        IReadOnlyList<PolicyParameter>? parameters = null) =>
        Register(new PolicyDescriptor(name, summary, make, Parameters: parameters), listed);

    /// <summary>What <c>hugefault list</c> and the report say about a policy: parameters with defaults, when it falls back, whether it is an extrapolation.</summary>
    public static PolicyInfo Describe(string name)
    {
        var d = Get(name);
        return new PolicyInfo(name, d.Summary, [Report, .. d.Parameters ?? []], d.FallsBackWhen, d.Extrapolation);
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
}

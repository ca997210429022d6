namespace HugeFault.Policies;

/// <summary>The registry of recovery policies by name.</summary>
public static class RecoveryPolicies
{
    private static readonly Dictionary<string, (string Summary, Func<IReadOnlyDictionary<string, string>, IRecoveryPolicy> Make)> Registry = new()
    {
        ["mainline"] = ("Linux today: poison and unmap the whole huge page (si_addr_lsb = 30)", p => new MainlinePolicy(p)),
        ["hgm"] = ("HugeTLB high-granularity mapping: unmap only the bad 4 KiB in every mapper (si_addr_lsb = 12)", p => new HgmPolicy(p, fullSplit: false)),
        ["hgm-full-split"] = ("HGM that splits the whole huge page to 4 KiB PTEs (what the minimal split saves)", p => new HgmPolicy(p, fullSplit: true)),
    };

    public static IReadOnlyList<string> Names => Registry.Keys.ToList();
    public static string Summary(string name) => Registry[name].Summary;
    public static bool Exists(string name) => Registry.ContainsKey(name);

    public static IRecoveryPolicy Create(string name, IReadOnlyDictionary<string, string> parameters)
    {
        if (!Registry.TryGetValue(name, out var e))
            throw new ArgumentException($"unknown policy '{name}' (known: {string.Join(", ", Registry.Keys)})");
        return e.Make(parameters);
    }

    internal static void Register(string name, string summary, Func<IReadOnlyDictionary<string, string>, IRecoveryPolicy> make) => Registry[name] = (summary, make);
}

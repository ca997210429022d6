using HugeFault.Policies;

namespace HugeFault.Fleet;

/// <summary>
/// The fleet's view of the recovery policies: exactly the kernel model's registry (<see cref="RecoveryPolicies"/>).
/// The fleet keeps no list or table of its own; what a policy does to a 1 GiB page comes from its kernel model
/// (<see cref="EffectTable"/>), so a policy registered there runs in the fleet with no edit here.
/// </summary>
public static class FleetPolicies
{
    /// <summary>Every registered policy, in the registry's order (the baseline first).</summary>
    public static IReadOnlyList<string> Names => RecoveryPolicies.Names;

    public const long GiB = 1L << 30;
    public const long PageBytes = 4096;
    public const long PagesPerGiB = GiB / PageBytes;

    /// <summary>True for a registered policy name (exact, lower case).</summary>
    public static bool TryParse(string name, out string policy)
    {
        policy = name;
        return RecoveryPolicies.Exists(name);
    }
}

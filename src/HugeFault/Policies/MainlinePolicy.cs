namespace HugeFault.Policies;

/// <summary>
/// Linux mainline today: the whole folio is poisoned and unmapped from every mapper, every later touch of
/// any byte of it gets SIGBUS BUS_MCEERR_AR with si_addr_lsb = huge page shift (spec §1.3-1.4).
/// </summary>
public sealed class MainlinePolicy : RecoveryPolicyBase
{
    public MainlinePolicy(IReadOnlyDictionary<string, string> parameters) : base(parameters) { }
    public override string Name => "mainline";
}

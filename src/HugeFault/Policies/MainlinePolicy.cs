namespace HugeFault.Policies;

/// <summary>
/// Linux mainline today: the whole folio is poisoned and unmapped from every mapper, every later touch of
/// any byte of it gets SIGBUS BUS_MCEERR_AR with si_addr_lsb = huge page shift (spec §1.3-1.4).
/// </summary>
public sealed class MainlinePolicy : RecoveryPolicyBase
{
    /// <summary>This policy's name, summary and provenance (see <see cref="PolicyDescriptor"/>).</summary>
    public static readonly PolicyDescriptor Descriptor = new("mainline", "Linux today: poison and unmap the whole huge page (si_addr_lsb = 30)",
        p => new MainlinePolicy(p), Provenance: "mainline (checked against Linux 6.1 and 6.12)");

    public MainlinePolicy(IReadOnlyDictionary<string, string> parameters) : base(parameters) { }
    public override string Name => Descriptor.Name;
}

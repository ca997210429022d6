namespace HugeFault.Policies;

/// <summary>The repair interface of Dan Williams' proposal, modelled as a new madvise advice (not in any kernel).</summary>
public static class MadvRepair
{
    /// <summary>MADV_REPAIR: atomically write 64 zero bytes over each poisoned cacheline in the range (like DAX_RECOVERY_WRITE / MOVDIR64B).</summary>
    public const int MADV_REPAIR = 200;
}

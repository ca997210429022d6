using System.Numerics;

namespace HugeFault.Fleet.Dram;

/// <summary>
/// Organisation of one DRAM rank as the fault model sees it (FaultSim's <c>DRAMDomain</c>): a rank is
/// <see cref="ChipsPerRank"/> devices side by side, each <see cref="ChipWidth"/> DQs wide, and every device is
/// addressed by <c>rank | bank | row | column | dq</c>. A "column" here is one beat of one device: at a column
/// address a device drives <see cref="ChipWidth"/> bits. Ranks, banks, rows and columns must be powers of two
/// so that every field is a whole number of address bits (as in FaultSim, whose masks are built with log2).
/// </summary>
/// <param name="ChipsPerRank">Devices per rank, data plus check chips (18 for a x4 ECC RDIMM rank, 9 for x8).</param>
/// <param name="ChipWidth">DQs per device: 4 or 8.</param>
/// <param name="Ranks">Ranks simulated together in one trial (each has its own <see cref="ChipsPerRank"/> devices).</param>
/// <param name="Banks">Banks per device.</param>
/// <param name="Rows">Rows per bank.</param>
/// <param name="Columns">Column addresses (beats) per row.</param>
public sealed record DramGeometry(int ChipsPerRank, int ChipWidth, int Ranks, int Banks, int Rows, int Columns)
{
    /// <summary>Largest device count a trial supports (chip indices are stored in 16 bits).</summary>
    public const int MaxChipsPerRank = 1024;

    /// <summary>The worked example of fault-model.md §2 scaled to the CLI's defaults: 18 x4 chips, 1 rank, 8 banks, 16 K rows, 2 K columns.</summary>
    public static DramGeometry Default { get; } = new(18, 4, 1, 8, 16384, 2048);

    /// <summary>Devices per trial: chips per rank × ranks. FIT rates are per device.</summary>
    public int Devices => ChipsPerRank * Ranks;

    /// <summary>
    /// Checks the geometry; returns one <see cref="DramConfigError"/> per problem (empty when valid). The core never
    /// throws for bad user input: the caller turns these into messages naming its own flags or file positions.
    /// </summary>
    public IReadOnlyList<DramConfigError> Validate()
    {
        var errors = new List<DramConfigError>();
        if (ChipsPerRank < 1 || ChipsPerRank > MaxChipsPerRank)
            errors.Add(new(nameof(ChipsPerRank), $"must be between 1 and {MaxChipsPerRank} (got {ChipsPerRank}); use 18 for a x4 ECC rank or 9 for x8"));
        if (ChipWidth != 4 && ChipWidth != 8)
            errors.Add(new(nameof(ChipWidth), $"must be 4 or 8 (got {ChipWidth})"));
        CheckPowerOfTwo(errors, nameof(Ranks), Ranks, 1, 16);
        CheckPowerOfTwo(errors, nameof(Banks), Banks, 1, 64);
        CheckPowerOfTwo(errors, nameof(Rows), Rows, 1, 1 << 22);
        CheckPowerOfTwo(errors, nameof(Columns), Columns, 1, 1 << 16);
        return errors;
    }

    private static void CheckPowerOfTwo(List<DramConfigError> errors, string field, int value, int min, int max)
    {
        if (value < min || value > max || !BitOperations.IsPow2(value))
            errors.Add(new(field, $"must be a power of two between {min} and {max} (got {value})"));
    }
}

/// <summary>One validation problem: the model parameter at fault and what to do about it.</summary>
/// <param name="Parameter">The record property name (e.g. <c>ChipWidth</c>); front ends map it to a flag or a file position.</param>
/// <param name="Message">What is wrong and the fix, without the parameter name.</param>
public sealed record DramConfigError(string Parameter, string Message);

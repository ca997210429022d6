namespace HugeFault.Fleet.Dram;

/// <summary>Per-fault attributes decided when the fault is injected.</summary>
[Flags]
public enum DramFaultFlags : byte
{
    /// <summary>Permanent, single-bit, textbook ECC.</summary>
    None = 0,
    /// <summary>Cleared by the next patrol scrub.</summary>
    Transient = 1,
    /// <summary>Corrupts two or more DQs of one beat of the device (every mode above <see cref="DramFaultMode.Bit"/>).</summary>
    MultiBit = 2,
    /// <summary>Drawn under the weakened-ECC knob: this single-device multi-bit fault defeats Chipkill on its own.</summary>
    WeakEcc = 4,
}

/// <summary>
/// One fault in one trial: where (device position and footprint), what (mode, flags) and when it exists
/// (<c>[Start, End)</c> in hours from the trial start). A 40-byte value type: trials keep them in a reused array,
/// never on the heap one by one.
/// </summary>
public readonly struct DramFault
{
    /// <summary>Cells covered on the device.</summary>
    public readonly FaultFootprint Footprint;

    /// <summary>Arrival time, hours.</summary>
    public readonly double Start;

    /// <summary>Time the fault stops existing (next scrub for transients, end of mission for permanents), hours.</summary>
    public readonly double End;

    /// <summary>Device position within the rank (0 … chips−1). The rank is part of <see cref="Footprint"/>.</summary>
    public readonly ushort Chip;

    /// <summary>Fault mode.</summary>
    public readonly DramFaultMode Mode;

    /// <summary>Persistence and ECC attributes.</summary>
    public readonly DramFaultFlags Flags;

    /// <summary>Creates a fault.</summary>
    public DramFault(FaultFootprint footprint, double start, double end, int chip, DramFaultMode mode, DramFaultFlags flags)
    {
        Footprint = footprint;
        Start = start;
        End = end;
        Chip = (ushort)chip;
        Mode = mode;
        Flags = flags;
    }

    /// <summary>True for a transient fault.</summary>
    public bool IsTransient => (Flags & DramFaultFlags.Transient) != 0;

    /// <summary>True when the fault corrupts several DQs of one beat.</summary>
    public bool IsMultiBit => (Flags & DramFaultFlags.MultiBit) != 0;

    /// <inheritdoc/>
    public override string ToString() =>
        $"chip {Chip} {Mode.Name()} {(IsTransient ? "transient" : "permanent")} [{Start:0.###} h, {End:0.###} h) {Footprint}";
}

/// <summary>What happened in one trial; flags combine.</summary>
[Flags]
public enum TrialOutcome : byte
{
    /// <summary>No fault arrived.</summary>
    None = 0,
    /// <summary>At least one fault arrived.</summary>
    Fault = 1,
    /// <summary>At some time a fault pattern existed that the ECC cannot correct (a detected UE, DUE), or no ECC.</summary>
    Uncorrectable = 2,
    /// <summary>At some time a pattern existed beyond the code's guaranteed detection: possible silent data corruption.</summary>
    Undetected = 4,
}

namespace HugeFault.Fleet.Dram;

/// <summary>
/// Fault modes of one DRAM device (FaultSim's <c>DRAM_1BIT … DRAM_NRANK</c>, plus the sub-array row cluster of the
/// DDR4 field data). The mode fixes the footprint's wildcard mask; see <see cref="DramFaultModes.WildMask"/>.
/// </summary>
public enum DramFaultMode : byte
{
    /// <summary>One cell: nothing wild.</summary>
    Bit = 0,
    /// <summary>All DQs of one column (one beat of the device).</summary>
    Word = 1,
    /// <summary>One column address in every row of one bank, all DQs (FaultSim DRAM_1COL).</summary>
    Column = 2,
    /// <summary>Every column of one row of one bank, all DQs.</summary>
    Row = 3,
    /// <summary>A sub-array: a power-of-two block of adjacent rows (default 512) of one bank, all columns and DQs.</summary>
    RowCluster = 4,
    /// <summary>Every cell of one bank.</summary>
    Bank = 5,
    /// <summary>Every bank of one rank of the device (FaultSim DRAM_NBANK).</summary>
    MultiBank = 6,
    /// <summary>This chip position in every rank: a lane/DQ/pin fault shared by the ranks behind it (FaultSim DRAM_NRANK).</summary>
    MultiRank = 7,
}

/// <summary>Helpers over <see cref="DramFaultMode"/>.</summary>
public static class DramFaultModes
{
    /// <summary>Number of modes.</summary>
    public const int Count = 8;

    /// <summary>All modes in enum order.</summary>
    public static ReadOnlySpan<DramFaultMode> All =>
    [
        DramFaultMode.Bit, DramFaultMode.Word, DramFaultMode.Column, DramFaultMode.Row,
        DramFaultMode.RowCluster, DramFaultMode.Bank, DramFaultMode.MultiBank, DramFaultMode.MultiRank,
    ];

    /// <summary>
    /// The wildcard mask of <paramref name="mode"/> in <paramref name="layout"/>. <paramref name="rowClusterBits"/>
    /// is log2 of the rows in a sub-array (clamped to the row field).
    /// </summary>
    public static ulong WildMask(this DramFaultMode mode, in DramAddressLayout layout, int rowClusterBits)
    {
        ulong clusterRows = rowClusterBits <= 0 ? 0UL
            : ((1UL << Math.Min(rowClusterBits, layout.RowBits)) - 1) << layout.RowShift;
        return mode switch
        {
            DramFaultMode.Bit => 0UL,
            DramFaultMode.Word => layout.DqMask,
            DramFaultMode.Column => layout.DqMask | layout.RowMask,
            DramFaultMode.Row => layout.DqMask | layout.ColumnMask,
            DramFaultMode.RowCluster => layout.DqMask | layout.ColumnMask | clusterRows,
            DramFaultMode.Bank => layout.DqMask | layout.ColumnMask | layout.RowMask,
            DramFaultMode.MultiBank => layout.DqMask | layout.ColumnMask | layout.RowMask | layout.BankMask,
            DramFaultMode.MultiRank => layout.DqMask | layout.ColumnMask | layout.RowMask | layout.BankMask | layout.RankMask,
            _ => throw new ArgumentOutOfRangeException(nameof(mode)),
        };
    }

    /// <summary>Short lower-case name used in reports.</summary>
    public static string Name(this DramFaultMode mode) => mode switch
    {
        DramFaultMode.Bit => "bit",
        DramFaultMode.Word => "word",
        DramFaultMode.Column => "column",
        DramFaultMode.Row => "row",
        DramFaultMode.RowCluster => "row-cluster",
        DramFaultMode.Bank => "bank",
        DramFaultMode.MultiBank => "multi-bank",
        DramFaultMode.MultiRank => "multi-rank",
        _ => mode.ToString(),
    };
}

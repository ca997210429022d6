using System.Numerics;
using System.Runtime.CompilerServices;

namespace HugeFault.Fleet.Dram;

/// <summary>
/// Bit layout of a device-local DRAM address, derived from a <see cref="DramGeometry"/>. Field widths are
/// log2 of the geometry, packed from bit 0 upwards exactly like FaultSim's <c>genRandomRange</c>:
/// <code>
///  63                                                                     0
/// +--------+--------+--------+------------+-----------+----------+
/// | unused |  rank  |  bank  |    row     |  column   |    dq    |
/// +--------+--------+--------+------------+-----------+----------+
///           RankBits BankBits   RowBits     ColumnBits   DqBits
///                                                       (2 for x4, 3 for x8)
/// e.g. 18 x4, 1 rank, 8 banks, 16 K rows, 2 K columns: dq 0-1, column 2-12, row 13-26, bank 27-29, rank none.
/// </code>
/// A word (one beat of one device) is everything above the dq field; a SEC-DED codeword is one beat across all
/// devices, a Chipkill codeword two beats (one 8-bit symbol per x4 device).
/// </summary>
public readonly struct DramAddressLayout
{
    /// <summary>Field widths in bits.</summary>
    public readonly int DqBits, ColumnBits, RowBits, BankBits, RankBits;

    /// <summary>Field shifts: each field starts where the previous one ends.</summary>
    public readonly int ColumnShift, RowShift, BankShift, RankShift;

    /// <summary>In-place field masks (already shifted).</summary>
    public readonly ulong DqMask, ColumnMask, RowMask, BankMask, RankMask;

    /// <summary>All address bits that exist in this geometry; bits above are ignored by every comparison.</summary>
    public readonly ulong ValidMask;

    /// <summary>Derives the layout; <paramref name="geometry"/> must already be valid.</summary>
    public DramAddressLayout(DramGeometry geometry)
    {
        DqBits = BitOperations.Log2((uint)geometry.ChipWidth);
        ColumnBits = BitOperations.Log2((uint)geometry.Columns);
        RowBits = BitOperations.Log2((uint)geometry.Rows);
        BankBits = BitOperations.Log2((uint)geometry.Banks);
        RankBits = BitOperations.Log2((uint)geometry.Ranks);
        ColumnShift = DqBits;
        RowShift = ColumnShift + ColumnBits;
        BankShift = RowShift + RowBits;
        RankShift = BankShift + BankBits;
        DqMask = FieldMask(0, DqBits);
        ColumnMask = FieldMask(ColumnShift, ColumnBits);
        RowMask = FieldMask(RowShift, RowBits);
        BankMask = FieldMask(BankShift, BankBits);
        RankMask = FieldMask(RankShift, RankBits);
        ValidMask = FieldMask(0, RankShift + RankBits);
    }

    private static ulong FieldMask(int shift, int bits) => bits == 0 ? 0UL : ((1UL << bits) - 1) << shift;

    /// <summary>Total address bits in use.</summary>
    public int TotalBits => RankShift + RankBits;

    /// <summary>Packs the fields; values are truncated to their field widths.</summary>
    public ChipAddress Compose(int rank, int bank, int row, int column, int dq) => new(
        (((ulong)rank << RankShift) & RankMask) |
        (((ulong)bank << BankShift) & BankMask) |
        (((ulong)row << RowShift) & RowMask) |
        (((ulong)column << ColumnShift) & ColumnMask) |
        ((ulong)dq & DqMask));

    /// <summary>The rank field of <paramref name="a"/>.</summary>
    public int Rank(ChipAddress a) => (int)((a.Value & RankMask) >> RankShift);
    /// <summary>The bank field of <paramref name="a"/>.</summary>
    public int Bank(ChipAddress a) => (int)((a.Value & BankMask) >> BankShift);
    /// <summary>The row field of <paramref name="a"/>.</summary>
    public int Row(ChipAddress a) => (int)((a.Value & RowMask) >> RowShift);
    /// <summary>The column field of <paramref name="a"/>.</summary>
    public int Column(ChipAddress a) => (int)((a.Value & ColumnMask) >> ColumnShift);
    /// <summary>The dq field of <paramref name="a"/>.</summary>
    public int Dq(ChipAddress a) => (int)(a.Value & DqMask);
}

/// <summary>One bit cell of one device, packed as described by <see cref="DramAddressLayout"/>.</summary>
/// <param name="Value">The packed <c>rank|bank|row|col|dq</c> bits.</param>
public readonly record struct ChipAddress(ulong Value);

/// <summary>
/// A fault's footprint on one device: a base address plus a wildcard mask (FaultSim's <c>FaultRange.fAddr/fWildMask</c>).
/// A set bit in <see cref="WildMask"/> means "any value of this address bit", so a footprint is an axis-aligned
/// sub-cube of the device's address space: bit = no wildcard, word = dq wild, row = column and dq wild, and so on.
/// <code>
///  Address  : | rank | bank |  row  |  col  | dq |   fixed bits (wild bits are kept 0)
///  WildMask : |  0/1 |  0/1 |  0/1  |  0/1  | 0/1|   1 = wildcard
/// </code>
/// </summary>
public readonly struct FaultFootprint : IEquatable<FaultFootprint>
{
    /// <summary>The fixed address bits; bits under <see cref="WildMask"/> are zero (normalised).</summary>
    public readonly ulong Address;

    /// <summary>The wildcard bits.</summary>
    public readonly ulong WildMask;

    /// <summary>Builds a footprint, clearing address bits that are wild so equal sets compare equal.</summary>
    public FaultFootprint(ulong address, ulong wildMask)
    {
        WildMask = wildMask;
        Address = address & ~wildMask;
    }

    /// <summary>
    /// True when some cell lies in both footprints, ignoring bits outside <paramref name="validMask"/> and treating
    /// <paramref name="extraWild"/> as wild on both sides (used to widen a cell to its ECC word or codeword). This is
    /// FaultSim's <c>~((maskA|maskB) | ~(addrA^addrB)) == 0</c> restricted to the valid bits: the footprints meet
    /// unless some bit is fixed in both and differs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Intersects(in FaultFootprint other, ulong validMask, ulong extraWild = 0) =>
        ((Address ^ other.Address) & ~(WildMask | other.WildMask | extraWild) & validMask) == 0;

    /// <summary>
    /// The common sub-cube of two intersecting footprints (each bit fixed if fixed in either; wild only if wild in both).
    /// Meaningless when they do not intersect.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FaultFootprint IntersectWith(in FaultFootprint other) =>
        new(Address | other.Address, WildMask & other.WildMask);

    /// <summary>True when the cell <paramref name="cell"/> lies in this footprint.</summary>
    public bool Contains(ChipAddress cell, ulong validMask) => ((cell.Value ^ Address) & ~WildMask & validMask) == 0;

    /// <summary>Number of cells covered within <paramref name="validMask"/>.</summary>
    public ulong CellCount(ulong validMask) => 1UL << BitOperations.PopCount(WildMask & validMask);

    /// <inheritdoc/>
    public bool Equals(FaultFootprint other) => Address == other.Address && WildMask == other.WildMask;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is FaultFootprint f && Equals(f);
    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Address, WildMask);
    /// <inheritdoc/>
    public override string ToString() => $"addr=0x{Address:X} wild=0x{WildMask:X}";
}

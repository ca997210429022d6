namespace HugeFault.Fleet.Dram;

/// <summary>
/// What an ECC scheme needs to know about a rank's address layout, computed once per model: the valid
/// address bits, the wildcard that widens a cell to its SEC-DED word (one beat, any DQ) and to its Chipkill
/// codeword (DQs plus the column bits of the beats in one 8-bit symbol). Shared by the rank evaluator and the
/// fleet's pattern finder so both apply the same codeword geometry.
/// </summary>
public readonly record struct EccCodewords(EccScheme Scheme, bool LaneIsMultiChip, ulong Valid, ulong WordWild, ulong CodewordWild, double ScrubHours)
{
    public static EccCodewords From(DramRankModel model)
    {
        var layout = new DramAddressLayout(model.Geometry);
        // 8-bit symbols: 8 / width beats per symbol (2 for x4, 1 for x8), clamped to the column field.
        int beatBits = Math.Min(model.Geometry.ChipWidth == 4 ? 1 : 0, layout.ColumnBits);
        ulong codeword = layout.DqMask | (beatBits == 0 ? 0UL : ((1UL << beatBits) - 1) << layout.ColumnShift);
        return new EccCodewords(model.Ecc.Scheme, model.Ecc.LaneFaultIsMultiChip, layout.ValidMask, layout.DqMask, codeword, model.ScrubHours);
    }
}

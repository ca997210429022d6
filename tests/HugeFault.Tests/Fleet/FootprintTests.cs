using CsCheck;
using HugeFault.Tests.Properties;
using HugeFault.Fleet.Dram;

namespace HugeFault.Tests.Fleet;

public class FootprintTests
{
    private static readonly DramGeometry Example = new(18, 4, 2, 8, 16384, 2048);
    private static readonly DramAddressLayout L = new(Example);

    [Fact]
    public void The_address_layout_packs_dq_column_row_bank_rank_from_bit_zero_up()
    {
        Assert.Equal((2, 11, 14, 3, 1), (L.DqBits, L.ColumnBits, L.RowBits, L.BankBits, L.RankBits));
        Assert.Equal((2, 13, 27, 30), (L.ColumnShift, L.RowShift, L.BankShift, L.RankShift));
        Assert.Equal((1UL << 31) - 1, L.ValidMask);
        var a = L.Compose(rank: 1, bank: 5, row: 1234, column: 2000, dq: 3);
        Assert.Equal((1, 5, 1234, 2000, 3), (L.Rank(a), L.Bank(a), L.Row(a), L.Column(a), L.Dq(a)));
    }

    [Fact]
    public void A_bank_fault_meets_a_bit_fault_in_the_same_bank_but_not_in_another_bank()
    {
        var bank = new FaultFootprint(L.Compose(0, 3, 0, 0, 0).Value, DramFaultMode.Bank.WildMask(L, 9));
        var bitSameBank = new FaultFootprint(L.Compose(0, 3, 77, 901, 2).Value, 0);
        var bitOtherBank = new FaultFootprint(L.Compose(0, 4, 77, 901, 2).Value, 0);
        var bitOtherRank = new FaultFootprint(L.Compose(1, 3, 77, 901, 2).Value, 0);
        Assert.True(bank.Intersects(bitSameBank, L.ValidMask));
        Assert.False(bank.Intersects(bitOtherBank, L.ValidMask));
        Assert.False(bank.Intersects(bitOtherRank, L.ValidMask));
    }

    [Fact]
    public void A_row_fault_and_a_column_fault_of_one_bank_always_cross()
    {
        var row = new FaultFootprint(L.Compose(0, 2, 10, 0, 0).Value, DramFaultMode.Row.WildMask(L, 9));
        var col = new FaultFootprint(L.Compose(0, 2, 0, 99, 0).Value, DramFaultMode.Column.WildMask(L, 9));
        var colOtherBank = new FaultFootprint(L.Compose(0, 1, 0, 99, 0).Value, DramFaultMode.Column.WildMask(L, 9));
        Assert.True(row.Intersects(col, L.ValidMask));
        Assert.False(row.Intersects(colOtherBank, L.ValidMask));
        var cell = row.IntersectWith(col);
        Assert.Equal(Example.ChipWidth, (int)cell.CellCount(L.ValidMask)); // one word: the crossing, all 4 DQs
        Assert.True(cell.Contains(L.Compose(0, 2, 10, 99, 3), L.ValidMask));
    }

    [Fact]
    public void Two_bit_faults_in_neighbouring_beats_share_a_chipkill_codeword_but_not_a_secded_word()
    {
        var a = new FaultFootprint(L.Compose(0, 1, 5, 40, 0).Value, 0);
        var b = new FaultFootprint(L.Compose(0, 1, 5, 41, 3).Value, 0);
        ulong word = L.DqMask;
        ulong codeword = L.DqMask | (1UL << L.ColumnShift);
        Assert.False(a.Intersects(b, L.ValidMask));
        Assert.False(a.Intersects(b, L.ValidMask, word));
        Assert.True(a.Intersects(b, L.ValidMask, codeword));
    }

    [Fact]
    public void Bits_outside_the_geometry_never_prevent_an_intersection()
    {
        var a = new FaultFootprint(L.Compose(0, 1, 5, 40, 0).Value | (1UL << 60), 0);
        var b = new FaultFootprint(L.Compose(0, 1, 5, 40, 0).Value, 0);
        Assert.True(a.Intersects(b, L.ValidMask));
    }

    [Fact]
    public void A_multi_rank_fault_covers_the_chip_position_in_every_rank()
    {
        var lane = new FaultFootprint(0, DramFaultMode.MultiRank.WildMask(L, 9));
        Assert.Equal(1UL << 31, lane.CellCount(L.ValidMask));
        Assert.True(lane.Intersects(new FaultFootprint(L.Compose(1, 7, 16383, 2047, 3).Value, 0), L.ValidMask));
    }

    // Tiny geometry: 2 ranks × 2 banks × 4 rows × 4 columns × x4 = 8 address bits, 256 cells: small enough to enumerate.
    private static readonly DramGeometry Tiny = new(2, 4, 2, 2, 4, 4);
    private static readonly DramAddressLayout T = new(Tiny);

    private static bool NaiveIntersects(FaultFootprint a, FaultFootprint b, ulong extraWild)
    {
        // Two footprints meet in a (code)word when some cell of a and some cell of b agree on every non-extra-wild bit.
        int cells = 1 << T.TotalBits;
        for (ulong x = 0; x < (ulong)cells; x++)
        {
            if (!a.Contains(new ChipAddress(x), T.ValidMask)) continue;
            for (ulong y = 0; y < (ulong)cells; y++)
            {
                if (((x ^ y) & ~extraWild & T.ValidMask) == 0 && b.Contains(new ChipAddress(y), T.ValidMask)) return true;
            }
        }
        return false;
    }

    [Fact]
    public void The_bitwise_intersection_test_agrees_with_enumerating_every_cell()
    {
        ulong codeword = T.DqMask | (1UL << T.ColumnShift);
        var gen = Gen.Select(Gen.ULong[0, 255], Gen.ULong[0, 255], Gen.ULong[0, 255], Gen.ULong[0, 255], Gen.Int[0, 2]);
        Pbt.Run(gen, c =>
        {
            var (aAddr, aWild, bAddr, bWild, widen) = c;
            var a = new FaultFootprint(aAddr, aWild);
            var b = new FaultFootprint(bAddr, bWild);
            ulong extra = widen switch { 0 => 0UL, 1 => T.DqMask, _ => codeword };
            Assert.Equal(NaiveIntersects(a, b, extra), a.Intersects(b, T.ValidMask, extra));
            if (a.Intersects(b, T.ValidMask))
            {
                // The intersection footprint is exactly the set of common cells.
                var ab = a.IntersectWith(b);
                for (ulong x = 0; x < 256; x++)
                {
                    var cell = new ChipAddress(x);
                    Assert.Equal(a.Contains(cell, T.ValidMask) && b.Contains(cell, T.ValidMask), ab.Contains(cell, T.ValidMask));
                }
            }
        }, iter: 400, stream: 37);
    }
}

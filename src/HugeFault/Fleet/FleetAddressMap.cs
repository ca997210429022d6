using System.Numerics;
using System.Runtime.CompilerServices;
using HugeFault.Fleet.Dram;

namespace HugeFault.Fleet;

/// <summary>Fields of a server-wide cacheline address.</summary>
public enum LineField : byte { Channel = 0, Column = 1, Bank = 2, Rank = 3, Row = 4, Dimm = 5, Socket = 6 }

/// <summary>
/// The physical-address map of one server: a GF(2)-linear bijection from a <em>line address</em> (the DRAM coordinates
/// of one 64-byte cacheline, packed below) to a physical address. Bit selection plus XOR hashing, which covers the
/// channel/rank/bank/row/column interleaves of real memory controllers, is linear, and linearity is what makes
/// footprints cheap: a fault's footprint is an affine subspace of line addresses, so its image is an affine subspace
/// of physical addresses whose 1 GiB and 4 KiB frame counts come from two GF(2) ranks.
/// <code>
///  line address (bit 0 up), default order (fault-model.md §2):
///  +---------+-------------+--------+------+---------+------+--------+
///  | channel | column/beat |  bank  | rank |   row   | dimm | socket |
///  +---------+-------------+--------+------+---------+------+--------+
///      3          7           4        1       18       0       1      = 34 bits
///  PA = line address &lt;&lt; 6 (64 B offset), with bank bits XOR low row bits when hashing is on.
///  → channel interleave every 64 B, one rank-row = 128 lines = 64 KiB, row bits 9+ select the 1 GiB frame.
/// </code>
/// The column field counts cachelines (device columns / beats per line): the beat bits live inside the line.
/// </summary>
public sealed class FleetAddressMap
{
    private readonly ulong[] _columns;       // PA contribution of each line-address bit
    private readonly int[] _shift = new int[7];
    private readonly int[] _bits = new int[7];

    /// <summary>Builds the map of <paramref name="server"/> (which must be valid).</summary>
    public FleetAddressMap(FleetServerConfig server)
    {
        int beatBits = BitOperations.Log2((uint)server.BeatsPerLine);
        _bits[(int)LineField.Channel] = BitOperations.Log2((uint)server.ChannelsPerSocket);
        _bits[(int)LineField.Column] = BitOperations.Log2((uint)server.Columns) - beatBits;
        _bits[(int)LineField.Bank] = BitOperations.Log2((uint)server.Banks);
        _bits[(int)LineField.Rank] = BitOperations.Log2((uint)server.RanksPerDimm);
        _bits[(int)LineField.Row] = BitOperations.Log2((uint)server.Rows);
        _bits[(int)LineField.Dimm] = BitOperations.Log2((uint)server.DimmsPerChannel);
        _bits[(int)LineField.Socket] = BitOperations.Log2((uint)server.Sockets);
        int at = 0;
        foreach (string name in server.AddressOrder)
        {
            var f = Parse(name);
            _shift[(int)f] = at;
            at += _bits[(int)f];
        }
        LineBits = at;
        BeatBits = beatBits;
        _columns = new ulong[LineBits];
        for (int i = 0; i < LineBits; i++) _columns[i] = 1UL << (i + 6);
        if (server.XorBankWithRow)
        {
            int hashed = Math.Min(_bits[(int)LineField.Bank], _bits[(int)LineField.Row]);
            for (int j = 0; j < hashed; j++)
                _columns[_shift[(int)LineField.Row] + j] |= 1UL << (_shift[(int)LineField.Bank] + j + 6);
        }
    }

    private static LineField Parse(string name) => name switch
    {
        "channel" => LineField.Channel, "column" => LineField.Column, "bank" => LineField.Bank, "rank" => LineField.Rank,
        "row" => LineField.Row, "dimm" => LineField.Dimm, "socket" => LineField.Socket,
        _ => throw new ArgumentException($"unknown address field '{name}'"),
    };

    /// <summary>Bits of a line address.</summary>
    public int LineBits { get; }

    /// <summary>log2 of the device beats inside one cacheline.</summary>
    public int BeatBits { get; }

    /// <summary>Width of a field.</summary>
    public int Bits(LineField f) => _bits[(int)f];

    /// <summary>Position of a field in the line address.</summary>
    public int Shift(LineField f) => _shift[(int)f];

    /// <summary>The PA contribution of each line-address bit (the map's matrix, column by column).</summary>
    public ReadOnlySpan<ulong> Columns => _columns;

    /// <summary>Physical address of the first byte of the line.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong LineToPhysical(ulong line)
    {
        ulong pa = 0;
        while (line != 0)
        {
            int i = BitOperations.TrailingZeroCount(line);
            pa ^= _columns[i];
            line &= line - 1;
        }
        return pa;
    }

    /// <summary>Places a value into a field.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Put(LineField f, ulong value) => (value & ((1UL << _bits[(int)f]) - 1)) << _shift[(int)f];

    /// <summary>The all-ones mask of a field.</summary>
    public ulong FieldMask(LineField f) => ((1UL << _bits[(int)f]) - 1) << _shift[(int)f];

    /// <summary>
    /// The line-address footprint (fixed bits, wild bits) of a fault footprint on DIMM <paramref name="dimmIndex"/>
    /// (socket-major, then channel, then DIMM in channel). DQ and beat bits vanish inside the cacheline.
    /// </summary>
    public (ulong Fixed, ulong Wild) ToLines(in FaultFootprint fp, in DramAddressLayout layout, int dimmIndex, int channels, int dimmsPerChannel)
    {
        ulong a = fp.Address, w = fp.WildMask;
        ulong fixedBits = 0, wild = 0;
        void Field(LineField f, ulong mask, int shift, int drop)
        {
            fixedBits |= Put(f, ((a & mask) >> shift) >> drop);
            wild |= Put(f, ((w & mask) >> shift) >> drop);
        }
        Field(LineField.Column, layout.ColumnMask, layout.ColumnShift, BeatBits);
        Field(LineField.Row, layout.RowMask, layout.RowShift, 0);
        Field(LineField.Bank, layout.BankMask, layout.BankShift, 0);
        Field(LineField.Rank, layout.RankMask, layout.RankShift, 0);
        int dimm = dimmIndex % dimmsPerChannel;
        int channel = dimmIndex / dimmsPerChannel % channels;
        int socket = dimmIndex / dimmsPerChannel / channels;
        fixedBits |= Put(LineField.Dimm, (ulong)dimm) | Put(LineField.Channel, (ulong)channel) | Put(LineField.Socket, (ulong)socket);
        return (fixedBits & ~wild, wild);
    }

    /// <summary>
    /// The 1 GiB, 2 MiB and 4 KiB frame structure of the lines {fixed ⊕ any combination of wild bits}. Fills
    /// <paramref name="frameBasis"/> with PA vectors whose combinations step through the distinct 1 GiB frames and
    /// <paramref name="inFrame"/> with PA vectors that move within a frame. Allocation-free.
    /// </summary>
    public FootprintFrames Analyze(ulong fixedBits, ulong wild, Span<ulong> frameBasis, Span<ulong> inFrame)
    {
        ulong basePa = LineToPhysical(fixedBits);
        int wildCount = BitOperations.PopCount(wild);
        // Gaussian elimination on the ≥1 GiB part, keeping full vectors so combinations stay real addresses.
        Span<ulong> reducedHigh = stackalloc ulong[64];
        int r30 = 0, inFrameCount = 0;
        Span<ulong> pivots12 = stackalloc ulong[64];
        Span<ulong> pivots21 = stackalloc ulong[64];
        int r12 = 0, r21 = 0;
        ulong ww = wild;
        while (ww != 0)
        {
            int i = BitOperations.TrailingZeroCount(ww);
            ww &= ww - 1;
            ulong v = _columns[i];
            ulong full = v;
            ulong hi = v >> 30;
            // Pivots are kept sorted by decreasing value, i.e. decreasing leading bit, so one pass reduces fully.
            for (int k = 0; k < r30; k++)
                if ((hi ^ reducedHigh[k]) < hi) { hi ^= reducedHigh[k]; full ^= frameBasis[k]; }
            if (hi != 0)
            {
                int j = r30++;
                while (j > 0 && reducedHigh[j - 1] < hi) { reducedHigh[j] = reducedHigh[j - 1]; frameBasis[j] = frameBasis[j - 1]; j--; }
                reducedHigh[j] = hi;
                frameBasis[j] = full;
            }
            else inFrame[inFrameCount++] = full;
            ulong p = v >> 12;
            for (int k = 0; k < r12; k++)
                if ((p ^ pivots12[k]) < p) p ^= pivots12[k];
            if (p != 0) InsertSorted(pivots12, ref r12, p);
            ulong q = v >> 21;
            for (int k = 0; k < r21; k++)
                if ((q ^ pivots21[k]) < q) q ^= pivots21[k];
            if (q != 0) InsertSorted(pivots21, ref r21, q);
        }
        return new FootprintFrames(basePa, wildCount, r30, r12, inFrameCount) { RegionRank = r21 };
    }

    // Keeps pivots in decreasing order so "x ^ pivot < x" reduces by the pivot's leading bit.
    private static void InsertSorted(Span<ulong> pivots, ref int n, ulong p)
    {
        int j = n++;
        while (j > 0 && pivots[j - 1] < p) { pivots[j] = pivots[j - 1]; j--; }
        pivots[j] = p;
    }
}

/// <summary>Frame structure of a footprint (see <see cref="FleetAddressMap.Analyze"/>).</summary>
/// <param name="BasePhysical">PA of the footprint's line with all wild bits zero.</param>
/// <param name="WildBits">log2 of the number of lines.</param>
/// <param name="FrameRank">log2 of the number of distinct 1 GiB frames.</param>
/// <param name="PageRank">log2 of the number of distinct 4 KiB frames.</param>
/// <param name="InFrameCount">Vectors moving within one 1 GiB frame.</param>
public readonly record struct FootprintFrames(ulong BasePhysical, int WildBits, int FrameRank, int PageRank, int InFrameCount)
{
    /// <summary>Distinct 1 GiB frames touched.</summary>
    public long Frames => 1L << FrameRank;
    /// <summary>Lines in each touched 1 GiB frame.</summary>
    public long LinesPerFrame => 1L << (WildBits - FrameRank);
    /// <summary>Distinct 4 KiB pages in each touched 1 GiB frame.</summary>
    public long PagesPerFrame => 1L << (PageRank - FrameRank);
    /// <summary>log2 of the number of distinct 2 MiB regions touched.</summary>
    public int RegionRank { get; init; }
    /// <summary>Distinct 2 MiB regions in each touched 1 GiB frame (the PMD entries a 4 KiB-granular split must open).</summary>
    public long RegionsPerFrame => 1L << (RegionRank - FrameRank);
}

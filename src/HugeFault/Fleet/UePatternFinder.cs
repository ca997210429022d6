using HugeFault.Fleet.Dram;

namespace HugeFault.Fleet;

/// <summary>
/// One uncorrectable pattern on one DIMM: the cells whose codewords the ECC cannot correct, and when. Reads of any
/// line of <see cref="Footprint"/> during <c>[Start, End)</c> are UE events.
/// </summary>
public readonly struct UePattern
{
    /// <summary>The uncorrectable cells (DIMM address layout), widened to whole ECC words/codewords.</summary>
    public readonly FaultFootprint Footprint;
    /// <summary>When the pattern came into existence (the completing fault's arrival), hours.</summary>
    public readonly double Start;
    /// <summary>When it stops existing (a transient scrubbed, the mission or the DIMM's end), hours.</summary>
    public readonly double End;
    /// <summary>Mode of the narrower fault of the pattern (whose footprint the UE footprint equals).</summary>
    public readonly DramFaultMode Mode;
    /// <summary>A transient fault takes part: rewriting the line repairs it.</summary>
    public readonly bool Transient;

    public UePattern(FaultFootprint footprint, double start, double end, DramFaultMode mode, bool transient)
    {
        Footprint = footprint; Start = start; End = end; Mode = mode; Transient = transient;
    }
}

/// <summary>
/// Lists the uncorrectable patterns of one DIMM's faults with the rules of <see cref="RankEccEvaluator"/> (none,
/// SEC-DED, Chipkill, ADDDC, weakened ECC, lane faults). The earliest pattern start equals
/// <see cref="EccVerdict.FirstUncorrectableHours"/> (a test checks it), so fleet and rank simulators agree.
/// Allocation-free; O(n²) in the DIMM's (tiny) fault count.
/// </summary>
public sealed class UePatternFinder
{
    private readonly EccCodewords _code;
    private EccScheme _scheme => _code.Scheme;
    private bool _laneIsMultiChip => _code.LaneIsMultiChip;
    private ulong _valid => _code.Valid;
    private ulong _wordWild => _code.WordWild;          // SEC-DED: a beat = rank|bank|row|col, any dq
    private ulong _codewordWild => _code.CodewordWild;  // Chipkill: dq plus the column bits of the beats in one symbol
    private double _scrubHours => _code.ScrubHours;

    /// <summary>Builds it for a valid <paramref name="model"/>.</summary>
    public UePatternFinder(DramRankModel model) => _code = EccCodewords.From(model);

    /// <summary>
    /// Writes the patterns of <paramref name="faults"/> (sorted by start) into <paramref name="output"/>; returns how many,
    /// or −(needed) when <paramref name="output"/> is too small.
    /// </summary>
    public int Find(ReadOnlySpan<DramFault> faults, Span<UePattern> output)
    {
        int n = 0;
        bool overflow = false;
        void Emit(Span<UePattern> o, in UePattern p)
        {
            if (n < o.Length) o[n] = p; else overflow = true;
            n++;
        }
        switch (_scheme)
        {
            case EccScheme.None:
                foreach (ref readonly var f in faults)
                    Emit(output, new UePattern(f.Footprint, f.Start, f.End, f.Mode, f.IsTransient));
                break;
            case EccScheme.SecDed:
                for (int i = 0; i < faults.Length; i++)
                {
                    ref readonly var a = ref faults[i];
                    if (a.IsMultiBit) { Emit(output, new UePattern(Widen(a.Footprint, _wordWild), a.Start, a.End, a.Mode, a.IsTransient)); continue; }
                    for (int j = i + 1; j < faults.Length; j++)
                    {
                        ref readonly var b = ref faults[j];
                        if (b.IsMultiBit || !Coexist(a.Start, a.End, b.Start, b.End)) continue;
                        if (!a.Footprint.Intersects(b.Footprint, _valid, _wordWild) || SameCell(a, b)) continue;
                        var fp = Widen(a.Footprint, _wordWild).IntersectWith(Widen(b.Footprint, _wordWild));
                        Emit(output, new UePattern(fp, Math.Max(a.Start, b.Start), Math.Min(a.End, b.End), DramFaultMode.Bit, a.IsTransient || b.IsTransient));
                    }
                }
                break;
            default:
                FindChipkill(faults, output, _scheme == EccScheme.Adddc, ref n, ref overflow);
                break;
        }
        return overflow ? -n : n;
    }

    private void FindChipkill(ReadOnlySpan<DramFault> faults, Span<UePattern> output, bool adddc, ref int n, ref bool overflow)
    {
        int sparedChip = -1;
        double spareTime = double.PositiveInfinity;
        if (adddc)
        {
            foreach (ref readonly var f in faults)
                if (f.IsMultiBit && !f.IsTransient) { sparedChip = f.Chip; spareTime = NextScrub(f.Start); break; }
        }
        for (int i = 0; i < faults.Length; i++)
        {
            ref readonly var f = ref faults[i];
            bool mappedOut = f.Chip == sparedChip && f.Start >= spareTime;
            double end = f.Chip == sparedChip ? Math.Min(f.End, spareTime) : f.End;
            if (!mappedOut && ((f.Flags & DramFaultFlags.WeakEcc) != 0 || (_laneIsMultiChip && f.Mode == DramFaultMode.MultiRank)))
                Add(output, new UePattern(Widen(f.Footprint, _codewordWild), f.Start, Math.Max(end, f.Start), f.Mode, f.IsTransient), ref n, ref overflow);
        }
        for (int i = 0; i < faults.Length; i++)
        {
            ref readonly var a = ref faults[i];
            double aEnd = a.Chip == sparedChip ? Math.Min(a.End, spareTime) : a.End;
            for (int j = i + 1; j < faults.Length; j++)
            {
                ref readonly var b = ref faults[j];
                if (b.Chip == a.Chip) continue;
                double bEnd = b.Chip == sparedChip ? Math.Min(b.End, spareTime) : b.End;
                if (!Coexist(a.Start, aEnd, b.Start, bEnd) || !a.Footprint.Intersects(b.Footprint, _valid, _codewordWild)) continue;
                var fp = Widen(a.Footprint, _codewordWild).IntersectWith(Widen(b.Footprint, _codewordWild));
                var mode = Wildness(a) <= Wildness(b) ? a.Mode : b.Mode;
                Add(output, new UePattern(fp, Math.Max(a.Start, b.Start), Math.Min(aEnd, bEnd), mode, a.IsTransient || b.IsTransient), ref n, ref overflow);
            }
        }
    }

    private int Wildness(in DramFault f) => System.Numerics.BitOperations.PopCount(f.Footprint.WildMask & _valid);

    private static void Add(Span<UePattern> o, in UePattern p, ref int n, ref bool overflow)
    {
        if (n < o.Length) o[n] = p; else overflow = true;
        n++;
    }

    private static FaultFootprint Widen(in FaultFootprint f, ulong wild) => new(f.Address, f.WildMask | wild);
    private static bool SameCell(in DramFault a, in DramFault b) => a.Chip == b.Chip && a.Footprint.Equals(b.Footprint);
    private static bool Coexist(double aStart, double aEnd, double bStart, double bEnd) => Math.Max(aStart, bStart) < Math.Min(aEnd, bEnd);
    private double NextScrub(double t) => (Math.Floor(t / _scrubHours) + 1.0) * _scrubHours;
}

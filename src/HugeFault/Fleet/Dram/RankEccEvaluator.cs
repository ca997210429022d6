namespace HugeFault.Fleet.Dram;

/// <summary>
/// Decides, from the faults of one trial, whether an uncorrectable or an undetectable pattern ever existed.
/// Fault-level, as fault-model.md §3 and §6.4: a pattern counts when it exists, whether or not anything reads it.
/// Faults interact only while both exist (<c>[Start, End)</c> overlap), so a transient fault scrubbed before a
/// second fault arrives is harmless.
/// <para>Rules (x4 or x8 devices; "word" = one beat of the rank, "codeword" = the ECC's unit):</para>
/// <list type="bullet">
/// <item><b>none</b>: any fault is an uncorrectable error and, with no code to notice it, an undetected one.</item>
/// <item><b>SEC-DED (72,64) per beat</b>: a fault spanning ≥2 DQs of a beat (every mode except
/// <see cref="DramFaultMode.Bit"/>; these masks wildcard all DQs, as FaultSim's do) is a UE; since it flips all 4 or 8
/// DQs, i.e. ≥3 bits of the word, it is also counted undetected (a Hsiao code guarantees detection only up to 2 bits;
/// 3 bits can be miscorrected, 4 can alias to a zero syndrome). Two coexisting bit faults in the same word at different
/// bit positions (different chips, or different DQs of one chip) are a UE; three are undetected.</item>
/// <item><b>Chipkill/SDDC</b>: a codeword is 8-bit symbols, one per device (2 beats of a x4 device, 1 beat of x8).
/// Any pattern confined to one device per codeword is corrected. A UE needs two coexisting faults on different chip
/// positions whose footprints meet in one codeword; three chips meeting in one codeword exceed double-symbol detection
/// and count as undetected. A single-device multi-bit fault drawn "weak" (<see cref="EccOptions.WeakenedProbability"/>)
/// is a UE on its own. Lane (multi-rank) faults are one chip position per codeword unless
/// <see cref="EccOptions.LaneFaultIsMultiChip"/>.</item>
/// <item><b>ADDDC</b>: as Chipkill, but the chip position of the first permanent multi-bit fault is spared at the first
/// patrol scrub after it arrives; from then on that position no longer contributes a bad symbol.</item>
/// </list>
/// </summary>
public sealed class RankEccEvaluator
{
    private readonly EccCodewords _code;
    private EccScheme _scheme => _code.Scheme;
    private bool _laneIsMultiChip => _code.LaneIsMultiChip;
    private ulong _valid => _code.Valid;
    private ulong _wordWild => _code.WordWild;          // SEC-DED: a beat = rank|bank|row|col, any dq
    private ulong _codewordWild => _code.CodewordWild;  // Chipkill: dq plus the column bits of the beats in one symbol
    private double _scrubHours => _code.ScrubHours;

    /// <summary>Builds it for a valid <paramref name="model"/>.</summary>
    public RankEccEvaluator(DramRankModel model) => _code = EccCodewords.From(model);

    /// <summary>
    /// Evaluates one trial. <paramref name="faults"/> must be sorted by <see cref="DramFault.Start"/> (ADDDC spares the
    /// earliest eligible fault). Allocation-free and O(n²) in the (almost always tiny) fault count.
    /// </summary>
    public TrialOutcome Evaluate(ReadOnlySpan<DramFault> faults) => Judge(faults).Outcome;

    /// <summary>
    /// Like <see cref="Evaluate"/>, and also says when the first uncorrectable and the first undetectable pattern came
    /// into existence (hours from the trial start): the arrival of the fault that completed the pattern. The per-server
    /// fleet simulator uses these times for "replace the DIMM after its first UE".
    /// </summary>
    public EccVerdict Judge(ReadOnlySpan<DramFault> faults)
    {
        if (faults.Length == 0) return new EccVerdict(false, double.PositiveInfinity, double.PositiveInfinity);
        double ue = double.PositiveInfinity, sdc = double.PositiveInfinity;
        switch (_scheme)
        {
            case EccScheme.None:
                ue = sdc = faults[0].Start;
                break;
            case EccScheme.SecDed:
                JudgeSecDed(faults, ref ue, ref sdc);
                break;
            default:
                JudgeChipkill(faults, _scheme == EccScheme.Adddc, ref ue, ref sdc);
                break;
        }
        return new EccVerdict(true, ue, sdc);
    }

    // Faults are sorted by start, so for i < j < l the pattern {i, j(, l)} is complete at faults[j].Start (faults[l].Start),
    // and a candidate whose completing fault starts no earlier than the best time found cannot improve it.

    private void JudgeSecDed(ReadOnlySpan<DramFault> faults, ref double ue, ref double sdc)
    {
        for (int i = 0; i < faults.Length; i++)
        {
            // A multi-DQ fault puts 4 (x4) or 8 (x8) bad bits in every beat it covers: beyond SEC, and beyond DED's guarantee.
            if (faults[i].IsMultiBit || IsMultiChipLane(faults[i]))
            {
                // The earliest such fault; a pair or triple of bit faults completed before it can still come first.
                ue = sdc = faults[i].Start;
                break;
            }
        }
        BitPairs(faults, ref ue, ref sdc);
    }

    private void BitPairs(ReadOnlySpan<DramFault> faults, ref double ue, ref double sdc)
    {
        // Only single-bit faults matter here: count distinct bad bit positions per word.
        for (int i = 0; i < faults.Length; i++)
        {
            ref readonly DramFault a = ref faults[i];
            if (a.IsMultiBit) continue;
            for (int j = i + 1; j < faults.Length && faults[j].Start < Math.Max(ue, sdc); j++)
            {
                ref readonly DramFault b = ref faults[j];
                if (b.IsMultiBit || !Coexist(a.Start, a.End, b.Start, b.End)) continue;
                if (!a.Footprint.Intersects(b.Footprint, _valid, _wordWild) || SameCell(a, b)) continue;
                ue = Math.Min(ue, b.Start);
                for (int l = j + 1; l < faults.Length && faults[l].Start < sdc; l++)
                {
                    ref readonly DramFault c = ref faults[l];
                    if (!c.IsMultiBit && Coexist(a.Start, a.End, c.Start, c.End) && Coexist(b.Start, b.End, c.Start, c.End) &&
                        a.Footprint.Intersects(c.Footprint, _valid, _wordWild) && !SameCell(a, c) && !SameCell(b, c))
                        sdc = Math.Min(sdc, c.Start);
                }
            }
        }
    }

    private void JudgeChipkill(ReadOnlySpan<DramFault> faults, bool adddc, ref double ue, ref double sdc)
    {
        int sparedChip = -1;
        double spareTime = double.PositiveInfinity;
        for (int i = 0; i < faults.Length; i++)
        {
            ref readonly DramFault f = ref faults[i];
            // Faults arriving on an already spared chip position are mapped out and cannot hurt (faults are sorted by start).
            bool mappedOut = f.Chip == sparedChip && f.Start >= spareTime;
            if (!mappedOut && ((f.Flags & DramFaultFlags.WeakEcc) != 0 || IsMultiChipLane(f))) ue = Math.Min(ue, f.Start);
            if (adddc && sparedChip < 0 && f.IsMultiBit && !f.IsTransient)
            {
                sparedChip = f.Chip;
                spareTime = NextScrub(f.Start);
            }
        }

        for (int i = 0; i < faults.Length; i++)
        {
            ref readonly DramFault a = ref faults[i];
            double aEnd = a.Chip == sparedChip ? Math.Min(a.End, spareTime) : a.End;
            for (int j = i + 1; j < faults.Length && faults[j].Start < Math.Max(ue, sdc); j++)
            {
                ref readonly DramFault b = ref faults[j];
                if (b.Chip == a.Chip) continue; // one symbol per codeword: corrected however many faults it holds
                double bEnd = b.Chip == sparedChip ? Math.Min(b.End, spareTime) : b.End;
                if (!Coexist(a.Start, aEnd, b.Start, bEnd) || !a.Footprint.Intersects(b.Footprint, _valid, _codewordWild)) continue;
                ue = Math.Min(ue, b.Start);
                // Third symbol in a codeword shared by a and b: beyond double-symbol detection.
                var ab = Widen(a.Footprint).IntersectWith(Widen(b.Footprint));
                for (int l = j + 1; l < faults.Length && faults[l].Start < sdc; l++)
                {
                    ref readonly DramFault c = ref faults[l];
                    if (c.Chip == a.Chip || c.Chip == b.Chip) continue;
                    double cEnd = c.Chip == sparedChip ? Math.Min(c.End, spareTime) : c.End;
                    // Intervals on a line that pairwise overlap share a common instant (Helly), so pairwise checks suffice.
                    if (Coexist(a.Start, aEnd, c.Start, cEnd) && Coexist(b.Start, bEnd, c.Start, cEnd) &&
                        ab.Intersects(c.Footprint, _valid, _codewordWild))
                        sdc = Math.Min(sdc, c.Start);
                }
            }
        }
        // An undetectable pattern is also an uncorrectable one (it holds an uncorrectable pair).
        ue = Math.Min(ue, sdc);
    }

    private FaultFootprint Widen(in FaultFootprint f) => new(f.Address, f.WildMask | _codewordWild);

    private bool IsMultiChipLane(in DramFault f) => _laneIsMultiChip && f.Mode == DramFaultMode.MultiRank;

    private static bool SameCell(in DramFault a, in DramFault b) => a.Chip == b.Chip && a.Footprint.Equals(b.Footprint);

    private static bool Coexist(double aStart, double aEnd, double bStart, double bEnd) =>
        Math.Max(aStart, bStart) < Math.Min(aEnd, bEnd);

    private double NextScrub(double t) => (Math.Floor(t / _scrubHours) + 1.0) * _scrubHours;
}

/// <summary>The ECC's judgement of one trial.</summary>
/// <param name="HadFault">At least one fault arrived.</param>
/// <param name="FirstUncorrectableHours">When the first uncorrectable pattern appeared (+∞ if never).</param>
/// <param name="FirstUndetectedHours">When the first undetectable pattern appeared (+∞ if never).</param>
public readonly record struct EccVerdict(bool HadFault, double FirstUncorrectableHours, double FirstUndetectedHours)
{
    /// <summary>The outcome flags.</summary>
    public TrialOutcome Outcome =>
        (HadFault ? TrialOutcome.Fault : TrialOutcome.None)
        | (FirstUncorrectableHours < double.PositiveInfinity ? TrialOutcome.Uncorrectable : TrialOutcome.None)
        | (FirstUndetectedHours < double.PositiveInfinity ? TrialOutcome.Undetected : TrialOutcome.None);
}

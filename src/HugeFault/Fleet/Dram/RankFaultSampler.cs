using System.Runtime.CompilerServices;
using HugeFault.Simulation;

namespace HugeFault.Fleet.Dram;

/// <summary>
/// Draws the faults of one trial. The model is an independent Poisson process per device × mode × {transient,
/// permanent}. Their superposition over the mission is a Poisson process whose count N ~ Poisson(Λ), Λ = Σ rates ×
/// hours, and given N the arrivals are i.i.d.: time uniform on the mission, (mode, persistence) with probability ∝
/// FIT (alias table), device uniform (every device has the same rates). That is exactly the law of the exponential-gap
/// simulation (<see cref="ReferenceRankFaultSampler"/>) but costs one 64-bit draw for the ~93 % of 7-year Jaguar trials
/// that see no fault: it is compared with a precomputed 64-bit threshold e^-Λ·2^64 of the Poisson CDF.
/// Immutable after construction and shared by all worker threads.
/// </summary>
public sealed class RankFaultSampler
{
    private readonly ulong[] _cdfThresholds; // P(N ≤ k)·2^64, last entry ulong.MaxValue
    private readonly AliasTable _categories;
    private readonly DramFaultMode[] _categoryMode;
    private readonly bool[] _categoryTransient;
    private readonly ulong[] _modeWild;
    private readonly ulong _valid;
    private readonly ulong _dqMask;
    private readonly uint _chips;
    private readonly double _hours;
    private readonly double _scrubHours;
    private readonly double _weakened;

    /// <summary>Precomputes thresholds and tables for a valid <paramref name="model"/>.</summary>
    public RankFaultSampler(DramRankModel model)
    {
        var layout = new DramAddressLayout(model.Geometry);
        _valid = layout.ValidMask;
        _dqMask = layout.DqMask;
        _chips = (uint)model.Geometry.ChipsPerRank;
        _hours = model.Hours;
        _scrubHours = model.ScrubHours;
        _weakened = model.Ecc.Scheme is EccScheme.Chipkill or EccScheme.Adddc ? model.Ecc.WeakenedProbability : 0.0;
        int clusterBits = System.Numerics.BitOperations.Log2((uint)model.RowClusterRows);
        _modeWild = new ulong[DramFaultModes.Count];
        foreach (var mode in DramFaultModes.All) _modeWild[(int)mode] = mode.WildMask(layout, clusterBits);

        var weights = new List<double>();
        var modes = new List<DramFaultMode>();
        var transient = new List<bool>();
        foreach (var mode in DramFaultModes.All)
        {
            foreach (bool t in (ReadOnlySpan<bool>)[true, false])
            {
                double fit = model.Fit.Fit(mode, t);
                if (fit <= 0) continue;
                weights.Add(fit);
                modes.Add(mode);
                transient.Add(t);
            }
        }
        _categories = new AliasTable(weights.ToArray());
        _categoryMode = modes.ToArray();
        _categoryTransient = transient.ToArray();

        ExpectedFaults = model.ExpectedFaultsPerTrial;
        _cdfThresholds = BuildThresholds(ExpectedFaults);
        MaxFaultsPerTrial = _cdfThresholds.Length - 1;
    }

    /// <summary>Λ, the mean number of faults per trial.</summary>
    public double ExpectedFaults { get; }

    /// <summary>Largest count the sampler can return (the Poisson tail beyond it has probability below 2^-64); size buffers with it.</summary>
    public int MaxFaultsPerTrial { get; }

    /// <summary>The 64-bit threshold below which a trial has no fault (e^-Λ·2^64).</summary>
    public ulong ZeroFaultThreshold => _cdfThresholds[0];

    private static ulong[] BuildThresholds(double lambda)
    {
        // Sum the pmf upwards until the remaining tail is below one part in 2^64 (or well past the mode).
        var thresholds = new List<ulong>();
        double pmf = Math.Exp(-lambda);
        double cdf = pmf;
        int cap = (int)Math.Ceiling(lambda + 15.0 * Math.Sqrt(lambda) + 30.0);
        for (int k = 0; ; k++)
        {
            if (k > 0)
            {
                pmf *= lambda / k;
                cdf += pmf;
            }
            bool last = k >= cap || (k > lambda && 1.0 - cdf < 5.421010862427522e-20 /* 2^-64 */);
            thresholds.Add(last ? ulong.MaxValue : ToThreshold(cdf));
            if (last) return thresholds.ToArray();
        }
    }

    private static ulong ToThreshold(double p) => p >= 1.0 ? ulong.MaxValue : (ulong)(p * 18446744073709551616.0);

    /// <summary>
    /// The fault count for a trial whose first draw was <paramref name="u"/> (inversion of the Poisson CDF).
    /// Callers test <c>u &lt; ZeroFaultThreshold</c> inline first, so this runs only for the trials with faults.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int CountFromUniform(ulong u)
    {
        var t = _cdfThresholds;
        int k = 0;
        while (k < t.Length - 1 && u >= t[k]) k++;
        return k;
    }

    /// <summary>
    /// Draws a whole trial into <paramref name="buffer"/> (length ≥ <see cref="MaxFaultsPerTrial"/>), sorted by arrival,
    /// and returns the count.
    /// </summary>
    public int SampleTrial(ref Xoshiro256StarStar rng, Span<DramFault> buffer)
    {
        ulong u = rng.NextUInt64();
        if (u < _cdfThresholds[0]) return 0;
        int k = CountFromUniform(u);
        PlaceFaults(ref rng, buffer[..k]);
        return k;
    }

    /// <summary>Fills <paramref name="faults"/> with i.i.d. arrivals and sorts them by time.</summary>
    public void PlaceFaults(ref Xoshiro256StarStar rng, Span<DramFault> faults)
    {
        for (int i = 0; i < faults.Length; i++)
        {
            int category = _categories.Sample(ref rng);
            var mode = _categoryMode[category];
            bool transient = _categoryTransient[category];
            ulong wild = _modeWild[(int)mode];
            // Every address field is a power of two, so one 64-bit draw sets all fixed fields uniformly, rank included
            // (a uniformly chosen device of a multi-rank trial).
            ulong address = rng.NextUInt64() & _valid & ~wild;
            int chip = (int)rng.NextBounded(_chips);
            double start = rng.NextDouble() * _hours;
            faults[i] = Make(ref rng, mode, transient, new FaultFootprint(address, wild), chip, start);
        }
        SortByStart(faults);
    }

    /// <summary>Builds one fault: end of life, multi-bit flag and the weakened-ECC draw. Shared with the reference sampler.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal DramFault Make(ref Xoshiro256StarStar rng, DramFaultMode mode, bool transient, FaultFootprint footprint, int chip, double start)
    {
        var flags = transient ? DramFaultFlags.Transient : DramFaultFlags.None;
        if ((footprint.WildMask & _dqMask) != 0)
        {
            flags |= DramFaultFlags.MultiBit;
            if (_weakened > 0 && rng.NextDouble() < _weakened) flags |= DramFaultFlags.WeakEcc;
        }
        // Patrol scrubs run at multiples of the scrub period from the trial start; a transient survives until the next one.
        double end = transient ? Math.Min(_hours, (Math.Floor(start / _scrubHours) + 1.0) * _scrubHours) : _hours;
        return new DramFault(footprint, start, end, chip, mode, flags);
    }

    internal ulong WildMask(DramFaultMode mode) => _modeWild[(int)mode];
    internal ulong ValidMask => _valid;

    /// <summary>Insertion sort: n is almost always 1–3, and it allocates nothing.</summary>
    internal static void SortByStart(Span<DramFault> faults)
    {
        for (int i = 1; i < faults.Length; i++)
        {
            var x = faults[i];
            int j = i - 1;
            while (j >= 0 && faults[j].Start > x.Start)
            {
                faults[j + 1] = faults[j];
                j--;
            }
            faults[j + 1] = x;
        }
    }
}

/// <summary>
/// The literal model, for validation: every device × mode × persistence runs its own Poisson process, drawn as
/// exponential gaps over the mission (FaultSim's event-driven mode). About 250 draws per 18-chip trial, so
/// ~100× slower than <see cref="RankFaultSampler"/>; tests use it as the naive reference the fast sampler must match.
/// </summary>
public sealed class ReferenceRankFaultSampler
{
    private readonly RankFaultSampler _shared;
    private readonly DramRankModel _model;
    private readonly DramAddressLayout _layout;

    /// <summary>Builds the sampler for a valid <paramref name="model"/>.</summary>
    public ReferenceRankFaultSampler(DramRankModel model)
    {
        _model = model;
        _shared = new RankFaultSampler(model);
        _layout = new DramAddressLayout(model.Geometry);
    }

    /// <summary>
    /// Draws a trial into <paramref name="buffer"/>, sorted by arrival; returns the count, or −1 when the buffer
    /// was too small (the trial is then invalid).
    /// </summary>
    public int SampleTrial(ref Xoshiro256StarStar rng, Span<DramFault> buffer)
    {
        int n = 0;
        double hours = _model.Hours;
        var g = _model.Geometry;
        for (int rank = 0; rank < g.Ranks; rank++)
        {
            for (int chip = 0; chip < g.ChipsPerRank; chip++)
            {
                foreach (var mode in DramFaultModes.All)
                {
                    foreach (bool transient in (ReadOnlySpan<bool>)[true, false])
                    {
                        double ratePerHour = _model.Fit.Fit(mode, transient) * _model.FitScale * 1e-9;
                        if (ratePerHour <= 0) continue;
                        ulong wild = _shared.WildMask(mode);
                        for (double t = Distributions.Exponential(ref rng, ratePerHour); t < hours;
                             t += Distributions.Exponential(ref rng, ratePerHour))
                        {
                            if (n == buffer.Length) return -1;
                            // Random fields, with the rank field forced to this device's rank.
                            ulong address = (rng.NextUInt64() & _shared.ValidMask & ~_layout.RankMask)
                                            | ((ulong)rank << _layout.RankShift & _layout.RankMask);
                            buffer[n++] = _shared.Make(ref rng, mode, transient, new FaultFootprint(address & ~wild, wild), chip, t);
                        }
                    }
                }
            }
        }
        RankFaultSampler.SortByStart(buffer[..n]);
        return n;
    }
}

using HugeFault.Fleet.Dram;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>
/// DIMM replacement (fault-model.md §6.7): the K-th pattern of a DIMM detected by a patrol scrub schedules a swap after
/// the repair delay. The old DIMM's faults end then; the new DIMM's faults are a fresh process on the whole mission
/// thinned to after the swap (exact for Poisson). Policy-independent, so every policy sees the same swaps.
/// </summary>
internal sealed class DimmService
{
    private readonly FleetModel _m;
    private readonly double[] _swaps = new double[64];

    public DimmService(FleetModel model) => _m = model;

    /// <summary>Swap times of the current server, in order.</summary>
    public ReadOnlySpan<double> Swaps => _swaps.AsSpan(0, Count);
    public int Count { get; private set; }

    /// <summary>Schedules this server's swaps and applies them to its faults (and so its patterns).</summary>
    public void Apply(ref Xoshiro256StarStar rng, ServerFaults faults, ref int patterns, ServerOutcome outcome)
    {
        Count = 0;
        var f = _m.Config.Faults;
        // (no pattern, no detection: most servers with faults have none)
        if (f.Replacement == ReplacementPolicy.Never || patterns == 0) return;
        double after = 0;
        for (int guard = 0; guard < _swaps.Length; guard++)
        {
            // Find the earliest time some DIMM reaches K detections after the last replacement.
            double best = double.PositiveInfinity;
            int bestDimm = -1;
            for (int d = 0; d < _m.Dimms; d++)
            {
                double kth = KthDetection(faults, d, patterns, after, f.ReplaceAfterUes);
                if (kth < best) { best = kth; bestDimm = d; }
            }
            double swap = best + f.RepairDelayHours;
            if (bestDimm < 0 || swap >= _m.Hours) return;
            _swaps[Count++] = swap;
            Replace(ref rng, faults, bestDimm, swap, outcome);
            // Recompute the patterns (only this DIMM's changed; DIMMs are few).
            patterns = faults.Rebuild(patterns);
            after = swap;
        }
    }

    /// <summary>The first patrol scrub after <paramref name="t"/> (when a pattern present then is detected).</summary>
    internal double NextScrub(double t) => (Math.Floor(t / _m.Config.Faults.ScrubHours) + 1.0) * _m.Config.Faults.ScrubHours;

    private double KthDetection(ServerFaults faults, int d, int patterns, double after, int k)
    {
        // Detection times are few; a tiny selection by repeated minimum keeps it allocation-free.
        double last = after;
        int seen = 0;
        double current = double.PositiveInfinity;
        while (seen < k)
        {
            current = double.PositiveInfinity;
            int ties = 0;
            for (int i = 0; i < patterns; i++)
            {
                if (faults.PatternDimm[i] != d) continue;
                ref readonly var p = ref faults.Patterns[i];
                double det = NextScrub(p.Start);
                if (det > p.End || det >= _m.Hours || det <= after) continue;
                if (det > last && det < current) { current = det; ties = 1; }
                else if (det == current) ties++;
            }
            if (double.IsPositiveInfinity(current)) return current;
            seen += Math.Max(1, ties);
            last = current;
        }
        return current;
    }

    private void Replace(ref Xoshiro256StarStar rng, ServerFaults faults, int d, double swap, ServerOutcome outcome)
    {
        // Old faults end at the swap; faults arriving later on the old DIMM never happen.
        int start = faults.DimmStart[d], n = faults.DimmCount[d], kept = 0;
        var span = faults.Faults.AsSpan(start, n);
        for (int i = 0; i < n; i++)
        {
            ref readonly var x = ref span[i];
            if (x.Start >= swap) continue;
            span[kept++] = new DramFault(x.Footprint, x.Start, Math.Min(x.End, swap), x.Chip, x.Mode, x.Flags);
        }
        double mult = _m.DrawMultiplier(ref rng);
        int fresh = (int)Math.Min(100_000, Distributions.Poisson(ref rng, _m.DimmFaultMean * mult));
        // Make room at the end of the buffer for the fresh draws, then move the survivors in.
        int totalUsed = 0;
        for (int x = 0; x < _m.Dimms; x++) totalUsed = Math.Max(totalUsed, faults.DimmStart[x] + faults.DimmCount[x]);
        faults.EnsureFaults(totalUsed + kept + fresh);
        var tail = faults.Faults.AsSpan(totalUsed, kept + fresh);
        faults.Faults.AsSpan(start, kept).CopyTo(tail);
        var newFaults = tail.Slice(kept, fresh);
        _m.Sampler.PlaceFaults(ref rng, newFaults);
        int keptNew = 0;
        for (int i = 0; i < fresh; i++) if (newFaults[i].Start >= swap) newFaults[keptNew++] = newFaults[i];
        faults.DimmStart[d] = totalUsed;
        faults.DimmCount[d] = kept + keptNew;
        faults.DimmMultiplier[d] = mult;
        outcome.Server[(int)ServerMetric.Faults] += keptNew;
    }
}

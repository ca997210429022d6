using HugeFault.Fleet.Dram;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>
/// One server's DRAM faults and the uncorrectable (ECC-defeating) patterns they form, per DIMM, plus deposited poison
/// as one-line patterns. Policy-independent. Buffers are reused from server to server (allocation-free after warm-up).
/// </summary>
internal sealed class ServerFaults
{
    private readonly FleetModel _m;
    private UePattern[] _depScratch = new UePattern[8];

    /// <summary>All faults; DIMM d owns <c>Faults[DimmStart[d] .. DimmStart[d] + DimmCount[d])</c>.</summary>
    internal DramFault[] Faults = new DramFault[64];
    internal readonly int[] DimmStart, DimmCount;
    internal readonly double[] DimmMultiplier;
    /// <summary>Patterns of every DIMM, then deposited poison (<see cref="PatternDimm"/> = −1).</summary>
    internal UePattern[] Patterns = new UePattern[64];
    internal int[] PatternDimm = new int[64];

    public ServerFaults(FleetModel model)
    {
        _m = model;
        DimmStart = new int[model.Dimms];
        DimmCount = new int[model.Dimms];
        DimmMultiplier = new double[model.Dimms];
    }

    /// <summary>Draws multipliers and fault counts conditioned on "something happened" (rejection: exact), then places faults.</summary>
    public int Draw(ref Xoshiro256StarStar rng, out int deposited)
    {
        // Which DIMMs have a fault, and whether deposited poison arrives: independent indicators, redrawn until one is
        // set (exact conditioning on "not fault-free", whose probability the caller's first draw already decided).
        ulong dimmZero = _m.DimmZeroThreshold, depZero = _m.DepositedZeroThreshold;
        bool depositedAny;
        // (the generator in a local for the loop: its state stays in registers)
        var r = rng;
        var count = DimmCount.AsSpan(0, _m.Dimms);
        while (true)
        {
            int nonZero = 0;
            for (int d = 0; d < count.Length; d++)
            {
                int any = r.NextUInt64() >= dimmZero ? 1 : 0;
                count[d] = any;
                nonZero += any;
            }
            depositedAny = r.NextUInt64() >= depZero;
            if (nonZero > 0 || depositedAny) break;
        }
        rng = r;
        int total = 0;
        for (int d = 0; d < _m.Dimms; d++)
        {
            if (DimmCount[d] == 0) { DimmMultiplier[d] = double.NaN; continue; }
            double mult = _m.DrawMultiplierGivenFault(ref rng);
            DimmMultiplier[d] = mult;
            int n = (int)Math.Min(100_000, FleetModel.ZeroTruncatedPoisson(ref rng, _m.DimmFaultMean * mult));
            DimmCount[d] = n;
            total += n;
        }
        deposited = depositedAny ? (int)FleetModel.ZeroTruncatedPoisson(ref rng, _m.DepositedMean) : 0;
        EnsureFaults(total);
        int at = 0;
        for (int d = 0; d < _m.Dimms; d++)
        {
            DimmStart[d] = at;
            _m.Sampler.PlaceFaults(ref rng, Faults.AsSpan(at, DimmCount[d]));
            at += DimmCount[d];
        }
        return total;
    }

    internal void EnsureFaults(int n)
    {
        if (Faults.Length < n) Array.Resize(ref Faults, Math.Max(n, Faults.Length * 2));
    }

    /// <summary>Patterns of every DIMM, then deposited poison as one-line patterns (recorded with dimm −1).</summary>
    public int FindAll(int deposited, ref Xoshiro256StarStar rng)
    {
        int count = 0;
        for (int d = 0; d < _m.Dimms; d++) count = AddDimmPatterns(d, count);
        for (int i = 0; i < deposited; i++)
        {
            EnsurePatterns(count + 1);
            ulong line = rng.NextUInt64() & _m.LineMask;
            double t = rng.NextDouble() * _m.Hours;
            // Deposited patterns carry the line address in the footprint's address field.
            Patterns[count] = new UePattern(new FaultFootprint(line, 0), t, _m.Hours, (DramFaultMode)DramFaultModes.Count, transient: true);
            PatternDimm[count] = -1;
            count++;
        }
        return count;
    }

    /// <summary>Recomputes every DIMM's patterns after a DIMM's faults changed, keeping the deposited ones.</summary>
    public int Rebuild(int patterns)
    {
        int deposited = 0;
        for (int i = 0; i < patterns; i++) if (PatternDimm[i] < 0) deposited++;
        if (_depScratch.Length < deposited) Array.Resize(ref _depScratch, Math.Max(deposited, 2 * _depScratch.Length));
        var dep = _depScratch;
        int k = 0;
        for (int i = 0; i < patterns; i++) if (PatternDimm[i] < 0) dep[k++] = Patterns[i];
        int count = 0;
        for (int d = 0; d < _m.Dimms; d++) count = AddDimmPatterns(d, count);
        EnsurePatterns(count + deposited);
        for (int i = 0; i < deposited; i++) { Patterns[count] = dep[i]; PatternDimm[count] = -1; count++; }
        return count;
    }

    private int AddDimmPatterns(int d, int count)
    {
        var faults = Faults.AsSpan(DimmStart[d], DimmCount[d]);
        if (faults.Length == 0) return count;
        while (true)
        {
            int n = _m.Patterns.Find(faults, Patterns.AsSpan(count));
            if (n >= 0)
            {
                for (int i = 0; i < n; i++) PatternDimm[count + i] = d;
                return count + n;
            }
            EnsurePatterns(count - n);
        }
    }

    private void EnsurePatterns(int n)
    {
        if (Patterns.Length >= n) return;
        int size = Math.Max(n, Patterns.Length * 2);
        Array.Resize(ref Patterns, size);
        Array.Resize(ref PatternDimm, size);
    }
}

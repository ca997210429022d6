using System.Numerics;
using HugeFault.Fleet.Dram;
using HugeFault.Mm;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>
/// Simulates one server at a time: faults → uncorrectable patterns → (pattern, 1 GiB frame) sites → UE events handled
/// by every policy on the same history (common random numbers). One instance per worker thread; every buffer is
/// reused, so after warm-up a server allocates nothing.
/// <para>Random streams of server i (all <see cref="Xoshiro256StarStar.ForStream"/>(seed, ·), so any sharding or thread
/// count gives the same server): 4i faults, 4i+1 site draws, 4i+2 VM arrivals, 4i+3 (+replacement index in the seed)
/// the stationary VM fill. Policies re-create the workload streams, so they all see the same VMs arrive.</para>
/// </summary>
public sealed class FleetServerSimulator
{
    private const long PagesPerGiB = FleetPolicies.PagesPerGiB;

    private readonly FleetModel _m;
    private readonly ServerOutcome _out;

    // faults, per DIMM ranges
    private DramFault[] _faults = new DramFault[64];
    private readonly int[] _dimmStart, _dimmCount;
    private readonly double[] _dimmMultiplier;
    private UePattern[] _patterns = new UePattern[64];
    private int[] _patternDimm = new int[64];
    private Site[] _sites = new Site[256];
    private int _siteCount;
    private UePattern[] _depScratch = new UePattern[8];
    private readonly double[] _replacements = new double[64];
    private int _replacementCount;
    private readonly ulong[] _frameBasis = new ulong[64];
    private readonly ulong[] _inFrame = new ulong[64];

    // per-policy workload state
    private readonly byte[] _state;
    private readonly int[] _owner;
    private readonly int[] _raw;
    private readonly long[] _pt, _pt2;
    private readonly int[] _nextFrame;
    private readonly ulong[] _freeBits;
    private int _freeCount;
    private Vm[] _vms = new Vm[256];
    private int _vmCount;
    private readonly Stack<int> _freeSlots = new();
    private (double End, int Slot, int Gen)[] _heap = new (double, int, int)[256];
    private int _heapCount;
    private Pending[] _pending = new Pending[64];
    private int _pendingCount;

    private struct Site
    {
        public double Start, End, Scrub, DemandExp, UKill;
        public long Lines, Pages, Offset;
        public int Frame;
        public byte Mode;
        public PoisonKind Kind;
    }

    private struct Vm
    {
        public double End, Hot, UEnlightened;
        public int Size, FirstFrame, Gen;
        public bool Alive;
    }

    private struct Pending
    {
        public double Time;
        public int Site;
        public bool Consumed;
    }


    private enum FrameState : byte { Free, Guest, Poisoned, Split, SplitOut, Broken, Kernel, User4k }

    public FleetServerSimulator(FleetModel model)
    {
        _m = model;
        _out = new ServerOutcome(model.Policies.Length, model.Bins);
        _dimmStart = new int[model.Dimms];
        _dimmCount = new int[model.Dimms];
        _dimmMultiplier = new double[model.Dimms];
        int frames = model.Frames;
        _state = new byte[frames];
        _owner = new int[frames];
        _raw = new int[frames];
        _pt = new long[frames];
        _pt2 = new long[frames];
        _nextFrame = new int[frames];
        _freeBits = new ulong[(frames + 63) / 64];
    }

    /// <summary>Optional observer of every UE event the first policy handles (tests sample real events with it); null on the hot path.</summary>
    public Action<FleetUeEvent>? Observer { get; set; }

    /// <summary>The reused outcome of the last <see cref="Simulate"/> call.</summary>
    public ServerOutcome Outcome => _out;

    /// <summary>Simulates server <paramref name="index"/>; returns false (and leaves <see cref="Outcome"/> all zero) for a fault-free server.</summary>
    public bool Simulate(long index)
    {
        var o = _out;
        if (o.Touched) o.Clear();
        o.Index = index;
        ulong seed = _m.Config.Seed;
        var rng = Xoshiro256StarStar.ForStream(seed, (ulong)index * 4);
        if (rng.NextUInt64() < _m.ZeroThreshold) return false;
        o.Touched = true;

        int total = DrawFaults(ref rng, out int deposited);
        o.Server[(int)ServerMetric.Faults] = total;
        _replacementCount = 0;
        int patterns = FindAllPatterns(deposited, ref rng);
        ApplyReplacements(ref rng, ref patterns);
        BuildSites(index, patterns);
        o.Server[(int)ServerMetric.Sites] = _siteCount;
        o.Server[(int)ServerMetric.DimmReplacements] = _replacementCount;
        if (_siteCount == 0) return true;
        o.HasPolicyData = true;
        // hgm, hgm-full-split, vma-convert and keep-mapped make the same decisions on every event and differ only in
        // page-table memory (and in what the frame is called): run the class once, tracking both page-table variants.
        int classRun = -1;
        for (int p = 0; p < _m.Policies.Length; p++)
        {
            if (IsSplitClass(_m.Policies[p]) && classRun >= 0) { CopySplitClass(classRun, p); continue; }
            RunPolicy(index, p);
            if (IsSplitClass(_m.Policies[p])) classRun = p;
        }
        return true;
    }

    // ---------------------------------------------------------------- faults

    /// <summary>Draws multipliers and fault counts conditioned on "something happened" (rejection: exact), then places faults.</summary>
    private int DrawFaults(ref Xoshiro256StarStar rng, out int deposited)
    {
        // Which DIMMs have a fault, and whether deposited poison arrives: independent indicators, redrawn until one is
        // set (exact conditioning on "not fault-free", whose probability the caller's first draw already decided).
        ulong dimmZero = _m.DimmZeroThreshold, depZero = _m.DepositedZeroThreshold;
        bool depositedAny;
        int nonZero;
        while (true)
        {
            nonZero = 0;
            for (int d = 0; d < _m.Dimms; d++)
            {
                bool any = rng.NextUInt64() >= dimmZero;
                _dimmCount[d] = any ? 1 : 0;
                nonZero += _dimmCount[d];
            }
            depositedAny = rng.NextUInt64() >= depZero;
            if (nonZero > 0 || depositedAny) break;
        }
        int total = 0;
        for (int d = 0; d < _m.Dimms; d++)
        {
            if (_dimmCount[d] == 0) { _dimmMultiplier[d] = double.NaN; continue; }
            double mult = _m.DrawMultiplierGivenFault(ref rng);
            _dimmMultiplier[d] = mult;
            int n = (int)Math.Min(100_000, FleetModel.ZeroTruncatedPoisson(ref rng, _m.DimmFaultMean * mult));
            _dimmCount[d] = n;
            total += n;
        }
        deposited = depositedAny ? (int)FleetModel.ZeroTruncatedPoisson(ref rng, _m.DepositedMean) : 0;
        EnsureFaults(total);
        int at = 0;
        for (int d = 0; d < _m.Dimms; d++)
        {
            _dimmStart[d] = at;
            _m.Sampler.PlaceFaults(ref rng, _faults.AsSpan(at, _dimmCount[d]));
            at += _dimmCount[d];
        }
        return total;
    }

    private void EnsureFaults(int n)
    {
        if (_faults.Length < n) Array.Resize(ref _faults, Math.Max(n, _faults.Length * 2));
    }

    /// <summary>Patterns of every DIMM, then deposited poison as one-line patterns (recorded with dimm −1).</summary>
    private int FindAllPatterns(int deposited, ref Xoshiro256StarStar rng)
    {
        int count = 0;
        for (int d = 0; d < _m.Dimms; d++) count = AddDimmPatterns(d, count);
        for (int i = 0; i < deposited; i++)
        {
            EnsurePatterns(count + 1);
            ulong line = rng.NextUInt64() & _m.LineMask;
            double t = rng.NextDouble() * _m.Hours;
            // Deposited patterns carry the line address in the footprint's address field.
            _patterns[count] = new UePattern(new FaultFootprint(line, 0), t, _m.Hours, (DramFaultMode)DramFaultModes.Count, transient: true);
            _patternDimm[count] = -1;
            count++;
        }
        return count;
    }

    private int AddDimmPatterns(int d, int count)
    {
        var faults = _faults.AsSpan(_dimmStart[d], _dimmCount[d]);
        if (faults.Length == 0) return count;
        while (true)
        {
            int n = _m.Patterns.Find(faults, _patterns.AsSpan(count));
            if (n >= 0)
            {
                for (int i = 0; i < n; i++) _patternDimm[count + i] = d;
                return count + n;
            }
            EnsurePatterns(count - n);
        }
    }

    private void EnsurePatterns(int n)
    {
        if (_patterns.Length >= n) return;
        int size = Math.Max(n, _patterns.Length * 2);
        Array.Resize(ref _patterns, size);
        Array.Resize(ref _patternDimm, size);
    }

    private double NextScrub(double t) => (Math.Floor(t / _m.Config.Faults.ScrubHours) + 1.0) * _m.Config.Faults.ScrubHours;

    /// <summary>
    /// DIMM replacement: the K-th detected pattern of a DIMM (detected by the first patrol scrub after it appears) schedules
    /// a replacement after the repair delay. The old DIMM's faults end then; the new DIMM's faults are a fresh process on
    /// the whole mission thinned to after the swap (exact for Poisson). Policy-independent, so every policy sees it.
    /// </summary>
    private void ApplyReplacements(ref Xoshiro256StarStar rng, ref int patterns)
    {
        var f = _m.Config.Faults;
        if (f.Replacement == ReplacementPolicy.Never) return;
        double after = 0;
        for (int guard = 0; guard < _replacements.Length; guard++)
        {
            // Find the earliest time some DIMM reaches K detections after the last replacement.
            double best = double.PositiveInfinity;
            int bestDimm = -1;
            for (int d = 0; d < _m.Dimms; d++)
            {
                double kth = KthDetection(d, patterns, after, f.ReplaceAfterUes);
                if (kth < best) { best = kth; bestDimm = d; }
            }
            double swap = best + f.RepairDelayHours;
            if (bestDimm < 0 || swap >= _m.Hours) return;
            _replacements[_replacementCount++] = swap;
            ReplaceDimm(ref rng, bestDimm, swap);
            // Recompute this DIMM's patterns (others unchanged): rebuild the whole list, DIMMs are few.
            int deposited = 0;
            for (int i = 0; i < patterns; i++) if (_patternDimm[i] < 0) deposited++;
            if (_depScratch.Length < deposited) Array.Resize(ref _depScratch, Math.Max(deposited, 2 * _depScratch.Length));
            var dep = _depScratch;
            int k = 0;
            for (int i = 0; i < patterns; i++) if (_patternDimm[i] < 0) dep[k++] = _patterns[i];
            int count = 0;
            for (int d = 0; d < _m.Dimms; d++) count = AddDimmPatterns(d, count);
            EnsurePatterns(count + deposited);
            for (int i = 0; i < deposited; i++) { _patterns[count] = dep[i]; _patternDimm[count] = -1; count++; }
            patterns = count;
            after = swap;
        }
    }

    private double KthDetection(int d, int patterns, double after, int k)
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
                if (_patternDimm[i] != d) continue;
                ref readonly var p = ref _patterns[i];
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

    private void ReplaceDimm(ref Xoshiro256StarStar rng, int d, double swap)
    {
        // Old faults end at the swap; faults arriving later on the old DIMM never happen.
        int start = _dimmStart[d], n = _dimmCount[d], kept = 0;
        var span = _faults.AsSpan(start, n);
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
        for (int x = 0; x < _m.Dimms; x++) totalUsed = Math.Max(totalUsed, _dimmStart[x] + _dimmCount[x]);
        EnsureFaults(totalUsed + kept + fresh);
        var tail = _faults.AsSpan(totalUsed, kept + fresh);
        _faults.AsSpan(start, kept).CopyTo(tail);
        var newFaults = tail.Slice(kept, fresh);
        _m.Sampler.PlaceFaults(ref rng, newFaults);
        int keptNew = 0;
        for (int i = 0; i < fresh; i++) if (newFaults[i].Start >= swap) newFaults[keptNew++] = newFaults[i];
        _dimmStart[d] = totalUsed;
        _dimmCount[d] = kept + keptNew;
        _dimmMultiplier[d] = mult;
        _out.Server[(int)ServerMetric.Faults] += keptNew;
    }

    // ---------------------------------------------------------------- sites

    private void BuildSites(long index, int patterns)
    {
        var o = _out;
        var srng = Xoshiro256StarStar.ForStream(_m.Config.Seed, (ulong)index * 4 + 1);
        _siteCount = 0;
        var s = _m.Config.Server;
        bool scrubReports = _m.Config.Faults.ScrubReportsUe;
        int dramPatterns = 0;
        for (int i = 0; i < patterns; i++)
        {
            ref readonly var p = ref _patterns[i];
            if (p.Start >= _m.Hours) continue;
            int d = _patternDimm[i];
            ulong fixedBits, wild;
            int modeIndex;
            PoisonKind kind;
            if (d < 0)
            {
                fixedBits = p.Footprint.Address;
                wild = 0;
                modeIndex = DramFaultModes.Count;
                kind = PoisonKind.Deposited;
            }
            else
            {
                (fixedBits, wild) = _m.Map.ToLines(p.Footprint, _m.Layout, d, s.ChannelsPerSocket, s.DimmsPerChannel);
                modeIndex = (int)p.Mode;
                kind = p.Transient ? PoisonKind.Transient : PoisonKind.Permanent;
                dramPatterns++;
            }
            o.Server[(int)ServerMetric.UePatterns]++;
            var ff = _m.Map.Analyze(fixedBits, wild, _frameBasis, _inFrame);
            o.ModePatterns[modeIndex]++;
            o.ModeFrames[modeIndex] += ff.Frames;
            o.ModeLines[modeIndex] += ff.Frames * ff.LinesPerFrame;
            double scrub = NextScrub(p.Start);
            // A transient pattern ends at the scrub that finds it (End == that scrub), so "≤ End" keeps it.
            if (!scrubReports || scrub > p.End || scrub >= _m.Hours) scrub = double.PositiveInfinity;
            long frames = ff.Frames;
            for (long fi = 0; fi < frames; fi++)
            {
                ulong pa = ff.BasePhysical;
                for (int b = 0; b < ff.FrameRank; b++) if (((fi >> b) & 1) != 0) pa ^= _frameBasis[b];
                EnsureSites(_siteCount + 1);
                ref var site = ref _sites[_siteCount++];
                site.Start = p.Start;
                site.End = p.End;
                site.Scrub = scrub;
                site.Lines = ff.LinesPerFrame;
                site.Pages = ff.PagesPerFrame;
                site.Frame = (int)(pa >> 30);
                site.Offset = (long)(pa & ((1UL << 30) - 1));
                site.Mode = (byte)modeIndex;
                site.Kind = kind;
                site.DemandExp = -Math.Log(srng.NextDoubleNonZero());
                site.UKill = srng.NextDouble();
                if (site.Frame < _m.KernelFrames) o.Server[(int)ServerMetric.KernelUes]++;
            }
        }
        if (dramPatterns > 0) o.Server[(int)ServerMetric.ServersWithUe] = 1;
        // Sites in start order (insertion sort: stable, allocation-free; counts are small).
        var span = _sites.AsSpan(0, _siteCount);
        for (int i = 1; i < span.Length; i++)
        {
            var x = span[i];
            int j = i - 1;
            while (j >= 0 && span[j].Start > x.Start) { span[j + 1] = span[j]; j--; }
            span[j + 1] = x;
        }
    }

    private void EnsureSites(int n)
    {
        if (_sites.Length < n) Array.Resize(ref _sites, Math.Max(n, _sites.Length * 2));
    }

    // ---------------------------------------------------------------- policies

    private long _stranded;
    private double _strandedHours, _lastT;
    private int _bin;
    private long _ptNow, _ptPeak, _ptNow2, _ptPeak2, _extraPeak;

    private static bool IsSplitClass(FleetPolicy p) => p is FleetPolicy.Hgm or FleetPolicy.HgmFullSplit or FleetPolicy.VmaConvert or FleetPolicy.KeepMapped;

    /// <summary>Page-table peak of a split-class policy from the class run: hgm's own or the full-split variant's.</summary>
    private long SplitClassPageTables(FleetPolicy p) => p switch
    {
        FleetPolicy.Hgm => _ptPeakHgm,
        FleetPolicy.HgmFullSplit or FleetPolicy.VmaConvert => _ptPeakFull,
        _ => 0,
    };

    private long _ptPeakHgm, _ptPeakFull;

    private void CopySplitClass(int from, int to)
    {
        var o = _out;
        for (int k = 0; k < ServerOutcome.PolicyMetrics; k++) o.Policy[to, k] = o.Policy[from, k];
        for (int b = 0; b < _m.Bins; b++) o.Series[to, b] = o.Series[from, b];
        o.Policy[to, (int)PolicyMetric.PageTablePeakBytes] = SplitClassPageTables(_m.Policies[to]);
    }
    private int _policyIndex;

    private void RunPolicy(long index, int pi)
    {
        _policyIndex = pi;
        var policy = _m.Policies[pi];
        var o = _out;
        var w = _m.Config.Workload;
        ulong seed = _m.Config.Seed;
        double t0 = _sites[0].Start;
        if (_replacementCount > 0) t0 = Math.Min(t0, _replacements[0]);
        // The host at t0 is the same for every policy: build it once, then copy it.
        if (pi == 0)
        {
            ResetHost();
            Fill(t0, seed, index, 0);
            SaveSnapshot();
        }
        else RestoreSnapshot();
        _lastT = t0; _bin = 0; _binHours = 0; _stranded = 0; _strandedHours = 0; _ptNow = 0; _ptPeak = 0; _ptNow2 = 0; _ptPeak2 = 0; _extraPeak = 0;
        // Bins before t0 hold nothing stranded.
        while (_bin < _m.Bins && BinTime(_bin) <= t0) _bin++;
        int replacementsDone = 0;
        var arrivals = Xoshiro256StarStar.ForStream(seed, (ulong)index * 4 + 2);
        double nextArrival = _m.ArrivalRatePerHour > 0 ? t0 + Distributions.Exponential(ref arrivals, _m.ArrivalRatePerHour) : double.PositiveInfinity;
        int nextSite = 0;
        ClearPending();
        double hours = _m.Hours;
        double scrubHours = _m.Config.Faults.ScrubHours;
        while (true)
        {
            double tSite = nextSite < _siteCount ? _sites[nextSite].Start : double.PositiveInfinity;
            double tPend = HasPending ? _pending[_pendingHead].Time : double.PositiveInfinity;
            double tRep = replacementsDone < _replacementCount ? _replacements[replacementsDone] : double.PositiveInfinity;
            bool workToCome = nextSite < _siteCount || HasPending || replacementsDone < _replacementCount;
            double tArr = workToCome ? nextArrival : double.PositiveInfinity;
            double tDep = _heapCount > 0 ? _heap[0].End : double.PositiveInfinity;
            if (!workToCome)
            {
                // Nothing left can cause an error: only departures of damaged VMs still change stranded capacity.
                tDep = NextDamagedDeparture();
            }
            double tWork = Math.Min(tSite, tRep);
            double lastStart = nextSite > 0 ? _sites[nextSite - 1].Start : t0;
            if (!HasPending && tWork < hours && tArr < tWork && tArr > lastStart + scrubHours && tWork - tArr > JumpHours)
            {
                // A long quiet gap (decided from policy-independent times only): let the VMs present now depart, then
                // refill to the stationary occupancy at the next site instead of simulating months of churn.
                while (_heapCount > 0 && _heap[0].End < tWork)
                {
                    var top = PopHeap();
                    if (!_vms[top.Slot].Alive || _vms[top.Slot].Gen != top.Gen) continue;
                    Advance(top.End);
                    EndVm(top.Slot);
                }
                Fill(tWork, seed, index, 1 + _replacementCount + nextSite * (_replacementCount + 1) + replacementsDone);
                nextArrival = tWork + Distributions.Exponential(ref arrivals, _m.ArrivalRatePerHour);
                continue;
            }
            double t = Math.Min(Math.Min(Math.Min(tSite, tPend), Math.Min(tRep, tArr)), tDep);
            if (t >= hours) break;
            Advance(t);
            if (t == tRep)
            {
                replacementsDone++;
                o.Policy[pi, (int)PolicyMetric.LiveMigrations] += LiveVms();
                ResetHost();
                // Refill only if something can still happen on this host (the VMs present matter only to later errors).
                if (nextSite < _siteCount || replacementsDone < _replacementCount) Fill(t, seed, index, replacementsDone);
                ClearPending();
            }
            else if (t == tDep)
            {
                var top = PopHeap();
                if (_vms[top.Slot].Alive && _vms[top.Slot].Gen == top.Gen) EndVm(top.Slot);
            }
            else if (t == tArr)
            {
                Arrive(ref arrivals, t);
                nextArrival = t + Distributions.Exponential(ref arrivals, _m.ArrivalRatePerHour);
            }
            else if (t == tPend)
            {
                // Patrol scrub finds many lines at one instant: handle every event due now in one go.
                do Handle(policy, pi, PopPending());
                while (HasPending && _pending[_pendingHead].Time == t);
            }
            else
            {
                // A pattern spanning many frames starts in all of them at once.
                do Schedule(nextSite++, w);
                while (nextSite < _siteCount && _sites[nextSite].Start == t);
                SortPending();
            }
        }
        Advance(hours);
        if (_bin < _m.Bins) FlushBin();
        o.Policy[pi, (int)PolicyMetric.StrandedPageHours] = (long)Math.Round(_strandedHours);
        o.Policy[pi, (int)PolicyMetric.StrandedPagesEnd] = _stranded;
        o.Policy[pi, (int)PolicyMetric.PageTablePeakBytes] = _ptPeak;
        if (IsSplitClass(policy))
        {
            // _pt holds hgm's tables (8 KiB + 4 KiB per further error), _pt2 the full split's (2 MiB + 4 KiB once).
            _ptPeakHgm = _ptPeak;
            _ptPeakFull = _ptPeak2;
            o.Policy[pi, (int)PolicyMetric.PageTablePeakBytes] = SplitClassPageTables(policy);
        }
        o.Policy[pi, (int)PolicyMetric.ExtraPeakBytes] = _extraPeak;
        long lost = 0;
        for (int f = _m.PoolStart; f < _m.Frames; f++)
            if ((FrameState)_state[f] is FrameState.Poisoned or FrameState.SplitOut or FrameState.Broken ||
                ((FrameState)_state[f] == FrameState.Split && _raw[f] > 0)) lost++;
        o.Policy[pi, (int)PolicyMetric.HugePagesLost] = lost;
        if (o.Policy[pi, (int)PolicyMetric.UeEvents] > 0) o.Policy[pi, (int)PolicyMetric.ServersWithUeEvent] = 1;
    }

    /// <summary>Gaps longer than this (one mean VM lifetime, at least 30 days) are skipped by a stationary refill.</summary>
    private double JumpHours => Math.Max(720.0, _m.LifetimeHours);

    private double BinTime(int b) => (b + 1) * (_m.Hours / _m.Bins);

    /// <summary>Integrates stranded capacity up to <paramref name="t"/>, overall and per monthly bin (4 KiB-page-hours).</summary>
    private void Advance(double t)
    {
        if (_stranded != 0)
        {
            double from = _lastT;
            while (_bin < _m.Bins && from < t)
            {
                double to = Math.Min(t, BinTime(_bin));
                _binHours += _stranded * (to - from);
                from = to;
                if (to >= BinTime(_bin)) FlushBin();
            }
        }
        else
        {
            while (_bin < _m.Bins && BinTime(_bin) <= t) FlushBin();
        }
        _strandedHours += _stranded * (t - _lastT);
        _lastT = t;
    }

    private double _binHours;

    private void FlushBin()
    {
        _out.Series[_policyIndex, _bin] = (long)Math.Round(_binHours);
        _binHours = 0;
        _bin++;
    }

    private byte[] _snapState = [];
    private int[] _snapOwner = [], _snapNext = [];
    private ulong[] _snapFree = [];
    private Vm[] _snapVms = [];
    private (double, int, int)[] _snapHeap = [];
    private int _snapFreeCount, _snapVmCount, _snapHeapCount;

    private void SaveSnapshot()
    {
        if (_snapState.Length != _state.Length)
        {
            _snapState = new byte[_state.Length];
            _snapOwner = new int[_owner.Length];
            _snapNext = new int[_nextFrame.Length];
            _snapFree = new ulong[_freeBits.Length];
        }
        _state.CopyTo(_snapState, 0);
        _owner.CopyTo(_snapOwner, 0);
        _nextFrame.CopyTo(_snapNext, 0);
        _freeBits.CopyTo(_snapFree, 0);
        if (_snapVms.Length < _vmCount) _snapVms = new Vm[_vms.Length];
        Array.Copy(_vms, _snapVms, _vmCount);
        if (_snapHeap.Length < _heapCount) _snapHeap = new (double, int, int)[_heap.Length];
        Array.Copy(_heap, _snapHeap, _heapCount);
        _snapFreeCount = _freeCount;
        _snapVmCount = _vmCount;
        _snapHeapCount = _heapCount;
    }

    private void RestoreSnapshot()
    {
        _snapState.CopyTo(_state, 0);
        _snapOwner.CopyTo(_owner, 0);
        _snapNext.CopyTo(_nextFrame, 0);
        _snapFree.CopyTo(_freeBits, 0);
        Array.Clear(_raw);
        Array.Clear(_pt);
        Array.Clear(_pt2);
        if (_vms.Length < _snapVmCount) Array.Resize(ref _vms, _snapVms.Length);
        Array.Copy(_snapVms, _vms, _snapVmCount);
        if (_heap.Length < _snapHeapCount) Array.Resize(ref _heap, _snapHeap.Length);
        Array.Copy(_snapHeap, _heap, _snapHeapCount);
        _freeCount = _snapFreeCount;
        _vmCount = _snapVmCount;
        _heapCount = _snapHeapCount;
        _freeSlots.Clear();
    }

    private void ResetHost()
    {
        _state.AsSpan(0, _m.KernelFrames).Fill((byte)FrameState.Kernel);
        _state.AsSpan(_m.KernelFrames, _m.PoolStart - _m.KernelFrames).Fill((byte)FrameState.User4k);
        _state.AsSpan(_m.PoolStart).Fill((byte)FrameState.Free);
        _owner.AsSpan().Fill(-1);
        _nextFrame.AsSpan().Fill(-1);
        Array.Clear(_raw);
        Array.Clear(_pt);
        Array.Clear(_pt2);
        Array.Clear(_freeBits);
        for (int f = _m.PoolStart; f < _m.Frames; f++) _freeBits[f >> 6] |= 1UL << (f & 63);
        _freeCount = _m.PoolFrames;
        _vmCount = 0;
        _freeSlots.Clear();
        _heapCount = 0;
        _stranded = 0;
        _ptNow = 0;
        _ptNow2 = 0;
    }

    private long LiveVms()
    {
        long n = 0;
        for (int i = 0; i < _vmCount; i++) if (_vms[i].Alive) n++;
        return n;
    }

    /// <summary>Stationary start: VMs drawn from the size mix until the pool reaches its target occupancy, residual lifetimes exponential (memoryless).</summary>
    private void Fill(double t, ulong seed, long index, int generation)
    {
        var rng = Xoshiro256StarStar.ForStream(seed + 0x9E3779B97F4A7C15UL * (ulong)generation, (ulong)index * 4 + 3);
        long owned = 0;
        for (int i = 0; i < _vmCount; i++) if (_vms[i].Alive) owned += _vms[i].Size;
        long room = Math.Min((long)Math.Floor(_m.Config.Workload.PoolOccupancy * _m.PoolFrames) - owned, _freeCount);
        for (int guard = 0; guard < 100_000; guard++)
        {
            int size = _m.VmSizes[_m.VmSizeTable.Sample(ref rng)];
            double life = Distributions.Exponential(ref rng, 1.0 / _m.LifetimeHours);
            double hot = DrawHot(ref rng);
            double uEnl = rng.NextDouble();
            if (size > room) break;
            Place(t, size, life, hot, uEnl);
            room -= size;
        }
    }

    private double DrawHot(ref Xoshiro256StarStar rng)
    {
        double s = _m.Config.Workload.HotnessSigma;
        return s > 0 ? Distributions.LogNormal(ref rng, -0.5 * s * s, s) : 1.0;
    }

    private void Arrive(ref Xoshiro256StarStar rng, double t)
    {
        int size = _m.VmSizes[_m.VmSizeTable.Sample(ref rng)];
        double life = Distributions.Exponential(ref rng, 1.0 / _m.LifetimeHours);
        double hot = DrawHot(ref rng);
        double uEnl = rng.NextDouble();
        if (size <= _freeCount) Place(t, size, life, hot, uEnl);
    }

    private void Place(double t, int size, double life, double hot, double uEnl)
    {
        int slot;
        if (_freeSlots.Count > 0) slot = _freeSlots.Pop();
        else
        {
            if (_vmCount == _vms.Length) Array.Resize(ref _vms, _vms.Length * 2);
            slot = _vmCount++;
        }
        ref var vm = ref _vms[slot];
        vm.End = t + life;
        vm.Hot = hot;
        vm.UEnlightened = uEnl;
        vm.Size = size;
        vm.Gen++;
        vm.Alive = true;
        vm.FirstFrame = -1;
        for (int k = 0; k < size; k++)
        {
            int f = TakeFreeFrame();
            _state[f] = (byte)FrameState.Guest;
            _owner[f] = slot;
            _nextFrame[f] = vm.FirstFrame;
            vm.FirstFrame = f;
        }
        PushHeap(vm.End, slot, vm.Gen);
    }

    /// <summary>Lowest free pool frame (first fit over a bitmap).</summary>
    private int TakeFreeFrame()
    {
        for (int i = _m.PoolStart >> 6; i < _freeBits.Length; i++)
        {
            ulong b = _freeBits[i];
            if (b == 0) continue;
            int f = (i << 6) + BitOperations.TrailingZeroCount(b);
            _freeBits[i] = b & (b - 1);
            _freeCount--;
            return f;
        }
        throw new InvalidOperationException("no free frame although the count said so");
    }

    private void MarkNotFree(int f)
    {
        if ((_freeBits[f >> 6] & (1UL << (f & 63))) != 0)
        {
            _freeBits[f >> 6] &= ~(1UL << (f & 63));
            _freeCount--;
        }
    }

    /// <summary>The VM exits (lifetime over or killed): healthy frames return to the pool, poisoned ones are dissolved.</summary>
    private void EndVm(int slot)
    {
        ref var vm = ref _vms[slot];
        vm.Alive = false;
        for (int f = vm.FirstFrame; f >= 0;)
        {
            int next = _nextFrame[f];
            ReleaseFrame(f);
            f = next;
        }
        vm.FirstFrame = -1;
        _freeSlots.Push(slot);
    }

    private void ReleaseFrame(int f)
    {
        switch ((FrameState)_state[f])
        {
            case FrameState.Guest:
                _state[f] = (byte)FrameState.Free;
                _freeBits[f >> 6] |= 1UL << (f & 63);
                _freeCount++;
                break;
            case FrameState.Poisoned:
                // free_huge_folio() → delayed dissolve: the healthy subpages go back, raw errors stay quarantined.
                _stranded -= PagesPerGiB - _raw[f];
                _state[f] = (byte)FrameState.Broken;
                break;
            case FrameState.Split:
            case FrameState.SplitOut:
                _state[f] = (byte)(_raw[f] > 0 ? FrameState.Broken : FrameState.Free);
                if (_raw[f] == 0) { _freeBits[f >> 6] |= 1UL << (f & 63); _freeCount++; }
                break;
        }
        _ptNow -= _pt[f];
        _ptNow2 -= _pt2[f];
        _pt[f] = 0;
        _pt2[f] = 0;
        _owner[f] = -1;
        _nextFrame[f] = -1;
    }

    private double NextDamagedDeparture()
    {
        // Only VMs holding a damaged frame matter once no error can come; scan the live ones (rarely many).
        double best = double.PositiveInfinity;
        for (int i = 0; i < _vmCount; i++)
        {
            ref readonly var vm = ref _vms[i];
            if (!vm.Alive || vm.End >= best) continue;
            for (int f = vm.FirstFrame; f >= 0; f = _nextFrame[f])
                if ((FrameState)_state[f] != FrameState.Guest || _pt[f] != 0 || _pt2[f] != 0) { best = vm.End; break; }
        }
        if (best < double.PositiveInfinity)
        {
            // Drop heap entries up to it so the departure path pops the right VM.
            while (_heapCount > 0 && _heap[0].End < best) PopHeap();
        }
        return best;
    }

    /// <summary>At the site's start: when will this policy's host first see it, and how (consumed by the owner, or found by the scrub)?</summary>
    private void Schedule(int si, FleetWorkloadConfig w)
    {
        ref readonly var s = ref _sites[si];
        double demand = double.PositiveInfinity;
        int owner = _owner[s.Frame];
        var st = (FrameState)_state[s.Frame];
        if (owner >= 0 && st != FrameState.Poisoned && w.TouchesPerLineHour > 0)
        {
            double rate = s.Lines * w.TouchesPerLineHour * _vms[owner].Hot;
            demand = s.Start + s.DemandExp / rate;
            if (demand >= s.End) demand = double.PositiveInfinity;
        }
        double t = Math.Min(demand, s.Scrub);
        if (t >= _m.Hours) return;
        PushPending(new Pending { Time = t, Site = si, Consumed = demand <= s.Scrub });
    }

    // Pending events: a queue sorted by (time, site). Sites are scheduled in same-time batches, so the queue is re-sorted
    // once per batch (introsort over a span, allocation-free) and popped from its head.
    private int _pendingHead;

    private static bool Before(in Pending a, in Pending b) => a.Time < b.Time || (a.Time == b.Time && a.Site < b.Site);

    /// <summary>Quicksort by (time, site) — keys are unique — with insertion sort for short runs. No delegates, no boxing.</summary>
    private static void SortPending(Span<Pending> a)
    {
        while (a.Length > 16)
        {
            // Median of three as the pivot, moved to the end.
            int mid = a.Length >> 1, last = a.Length - 1;
            if (Before(a[mid], a[0])) (a[mid], a[0]) = (a[0], a[mid]);
            if (Before(a[last], a[0])) (a[last], a[0]) = (a[0], a[last]);
            if (Before(a[mid], a[last])) (a[mid], a[last]) = (a[last], a[mid]);
            var pivot = a[last];
            int store = 0;
            for (int i = 0; i < last; i++)
                if (Before(a[i], pivot)) { (a[i], a[store]) = (a[store], a[i]); store++; }
            (a[store], a[last]) = (a[last], a[store]);
            // Recurse into the smaller side, loop on the larger: O(log n) depth.
            var left = a[..store];
            var right = a[(store + 1)..];
            if (left.Length < right.Length) { SortPending(left); a = right; }
            else { SortPending(right); a = left; }
        }
        for (int i = 1; i < a.Length; i++)
        {
            var x = a[i];
            int j = i - 1;
            while (j >= 0 && Before(x, a[j])) { a[j + 1] = a[j]; j--; }
            a[j + 1] = x;
        }
    }

    private void PushPending(Pending p)
    {
        if (_pendingCount == _pending.Length)
        {
            if (_pendingHead > 0)
            {
                Array.Copy(_pending, _pendingHead, _pending, 0, _pendingCount - _pendingHead);
                _pendingCount -= _pendingHead;
                _pendingHead = 0;
            }
            if (_pendingCount == _pending.Length) Array.Resize(ref _pending, _pending.Length * 2);
        }
        _pending[_pendingCount++] = p;
    }

    private void SortPending() => SortPending(_pending.AsSpan(_pendingHead, _pendingCount - _pendingHead));

    private bool HasPending => _pendingHead < _pendingCount;

    private Pending PopPending()
    {
        var top = _pending[_pendingHead++];
        if (_pendingHead == _pendingCount) _pendingHead = _pendingCount = 0;
        return top;
    }

    private void ClearPending() => _pendingHead = _pendingCount = 0;

    /// <summary>One UE event under one policy: the per-policy fast path (<see cref="FleetPolicies.Resolve"/>) plus guest consequences.</summary>
    private void Handle(FleetPolicy policy, int pi, Pending ev)
    {
        ref readonly var s = ref _sites[ev.Site];
        var o = _out;
        var g = _m.Config.Guest;
        int f = s.Frame;
        int owner = _owner[f];
        bool consumed = ev.Consumed && owner >= 0;
        o.Policy[pi, (int)PolicyMetric.UeEvents]++;
        if (consumed) o.Policy[pi, (int)PolicyMetric.ConsumedUes]++;
        long badPages = Math.Min(s.Pages, PagesPerGiB - _raw[f]);
        if (pi == 0 && Observer is { } observe)
            observe(new FleetUeEvent(_out.Index, f, s.Offset, s.Kind, (FrameState)_state[f] switch
            {
                FrameState.Free => FleetFrameUse.FreeHuge,
                FrameState.Guest => FleetFrameUse.MappedHuge,
                FrameState.Kernel => FleetFrameUse.Kernel,
                FrameState.User4k => FleetFrameUse.User4k,
                _ => FleetFrameUse.AlreadyPoisoned,
            }, consumed, badPages, s.Lines));
        long badBytes = s.Lines * 64;
        int mappings = _m.Config.Workload.MappingsPerPage;
        switch ((FrameState)_state[f])
        {
            case FrameState.Kernel:
            case FrameState.User4k:
            case FrameState.Broken:
                AddRaw(f, badPages, stranded: true);
                return;
            case FrameState.Poisoned:
                AddRaw(f, badPages, stranded: false);
                if (consumed && s.UKill < g.MainlineKillOnConsumed) Kill(owner);
                return;
            case FrameState.Split:
            case FrameState.SplitOut:
                if (policy == FleetPolicy.Repair && s.Kind != PoisonKind.Permanent && _vms[owner].UEnlightened < g.EnlightenedFraction)
                {
                    o.Policy[pi, (int)PolicyMetric.Repairs]++;
                    return;
                }
                AddRaw(f, badPages, stranded: true);
                o.Policy[pi, (int)PolicyMetric.GuestLostBytes] += badPages * FleetPolicies.PageBytes;
                o.Policy[pi, (int)PolicyMetric.GoodDataLostBytes] += Math.Max(0, badPages * FleetPolicies.PageBytes - badBytes);
                if (IsSplitClass(policy)) AddPt(f, FleetPolicies.PageBytes * mappings, 0);
                if (s.UKill < g.GuestKernelFraction) Kill(owner);
                return;
        }
        // First poison of a healthy hugetlb frame: the per-policy table.
        var use = owner >= 0 ? FrameUse.MappedHuge : FrameUse.FreeHuge;
        bool accepted = owner < 0 || _vms[owner].UEnlightened < g.EnlightenedFraction;
        var fx = FleetPolicies.Resolve(policy, use, s.Kind, badPages, accepted, _freeCount > 0, _m.RepairFallback, _m.CopyFallback);
        if (fx.UsedFallback) o.Policy[pi, (int)PolicyMetric.Fallbacks]++;
        if (fx.ExtraPeakBytes > _extraPeak) _extraPeak = fx.ExtraPeakBytes;
        switch (fx.Fate)
        {
            case FrameFate.Repaired:
                o.Policy[pi, (int)PolicyMetric.Repairs]++;
                return;
            case FrameFate.Dissolve:
                MarkNotFree(f);
                _state[f] = (byte)FrameState.Broken;
                AddRaw(f, badPages, stranded: true);
                return;
            case FrameFate.PoisonWhole:
                _state[f] = (byte)FrameState.Poisoned;
                _raw[f] = (int)badPages;
                _stranded += PagesPerGiB;
                o.Policy[pi, (int)PolicyMetric.GuestLostBytes] += FleetPolicies.GiB;
                o.Policy[pi, (int)PolicyMetric.GoodDataLostBytes] += FleetPolicies.GiB - badBytes;
                if (s.UKill < (consumed ? g.MainlineKillOnConsumed : g.MainlineKillOnScrubbed)) Kill(owner);
                return;
            case FrameFate.PoisonSubpages:
                _state[f] = (byte)(fx.LeavesPool ? FrameState.SplitOut : FrameState.Split);
                break;
            case FrameFate.CopiedAway:
            {
                // The VM now maps a new 1 GiB page; the old one is dissolved around its bad 4 KiB pages.
                int nf = TakeFreeFrame();
                _state[nf] = (byte)FrameState.Guest;
                ReplaceInVm(owner, f, nf);
                _state[f] = (byte)FrameState.Broken;
                _owner[f] = -1;
                break;
            }
            case FrameFate.MovedTo4K:
                // The range now lives on 4 KiB tmpfs pages outside the pool; the old page is dissolved.
                RemoveFromVm(owner, f);
                _state[f] = (byte)FrameState.Broken;
                _owner[f] = -1;
                _ptNow += fx.PageTableBytesPerMapping * mappings;
                if (_ptNow > _ptPeak) _ptPeak = _ptNow;
                break;
        }
        AddRaw(f, badPages, stranded: true);
        o.Policy[pi, (int)PolicyMetric.GuestLostBytes] += fx.InaccessibleBytes;
        o.Policy[pi, (int)PolicyMetric.GoodDataLostBytes] += Math.Max(0, fx.InaccessibleBytes - badBytes);
        if (fx.Fate == FrameFate.PoisonSubpages)
        {
            if (IsSplitClass(policy))
                AddPt(f, FleetPolicies.Resolve(FleetPolicy.Hgm, use, s.Kind, badPages, accepted, true).PageTableBytesPerMapping * mappings,
                    FleetPolicies.Resolve(FleetPolicy.HgmFullSplit, use, s.Kind, badPages, accepted, true).PageTableBytesPerMapping * mappings);
            else AddPt(f, fx.PageTableBytesPerMapping * mappings, 0);
        }
        if (s.UKill < g.GuestKernelFraction) Kill(owner);
    }

    private void AddRaw(int f, long pages, bool stranded)
    {
        _raw[f] += (int)pages;
        if (stranded) _stranded += pages;
    }

    private void AddPt(int f, long bytes, long bytes2)
    {
        _pt[f] += bytes;
        _ptNow += bytes;
        if (_ptNow > _ptPeak) _ptPeak = _ptNow;
        _pt2[f] += bytes2;
        _ptNow2 += bytes2;
        if (_ptNow2 > _ptPeak2) _ptPeak2 = _ptNow2;
    }

    private void Kill(int slot)
    {
        if (slot < 0 || !_vms[slot].Alive) return;
        _out.Policy[_policyIndex, (int)PolicyMetric.VmsKilled]++;
        EndVm(slot);
    }

    private void ReplaceInVm(int slot, int oldFrame, int newFrame)
    {
        ref var vm = ref _vms[slot];
        _owner[newFrame] = slot;
        if (vm.FirstFrame == oldFrame) { _nextFrame[newFrame] = _nextFrame[oldFrame]; vm.FirstFrame = newFrame; }
        else
        {
            for (int f = vm.FirstFrame; f >= 0; f = _nextFrame[f])
                if (_nextFrame[f] == oldFrame) { _nextFrame[f] = newFrame; _nextFrame[newFrame] = _nextFrame[oldFrame]; break; }
        }
        _nextFrame[oldFrame] = -1;
    }

    private void RemoveFromVm(int slot, int frame)
    {
        ref var vm = ref _vms[slot];
        if (vm.FirstFrame == frame) vm.FirstFrame = _nextFrame[frame];
        else
        {
            for (int f = vm.FirstFrame; f >= 0; f = _nextFrame[f])
                if (_nextFrame[f] == frame) { _nextFrame[f] = _nextFrame[frame]; break; }
        }
        _nextFrame[frame] = -1;
    }

    // ---------------------------------------------------------------- departure heap

    private void PushHeap(double end, int slot, int gen)
    {
        if (_heapCount == _heap.Length) Array.Resize(ref _heap, _heap.Length * 2);
        int i = _heapCount++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (Less(_heap[parent], end, slot)) break;
            _heap[i] = _heap[parent];
            i = parent;
        }
        _heap[i] = (end, slot, gen);
    }

    private static bool Less((double End, int Slot, int Gen) a, double end, int slot) => a.End < end || (a.End == end && a.Slot < slot);

    private (double End, int Slot, int Gen) PopHeap()
    {
        var top = _heap[0];
        var last = _heap[--_heapCount];
        int i = 0;
        while (true)
        {
            int c = 2 * i + 1;
            if (c >= _heapCount) break;
            if (c + 1 < _heapCount && Less(_heap[c + 1], _heap[c].End, _heap[c].Slot)) c++;
            if (Less(last, _heap[c].End, _heap[c].Slot)) break;
            _heap[i] = _heap[c];
            i = c;
        }
        if (_heapCount > 0) _heap[i] = last;
        return top;
    }
}

/// <summary>Where a UE event lands, as the observer reports it.</summary>
public enum FleetFrameUse : byte { FreeHuge, MappedHuge, Kernel, User4k, AlreadyPoisoned }

/// <summary>One UE event of the fleet (for sampling in tests and tools).</summary>
/// <param name="Server">Server index.</param>
/// <param name="Frame">1 GiB frame.</param>
/// <param name="Offset">Byte offset of the named cacheline within the frame.</param>
/// <param name="Kind">Permanent, transient or deposited.</param>
/// <param name="Use">What the frame held.</param>
/// <param name="Consumed">Action required (a demand read) rather than found by patrol scrub.</param>
/// <param name="BadPages">Distinct 4 KiB pages of the frame with errors.</param>
/// <param name="Lines">Bad cachelines in the frame.</param>
public readonly record struct FleetUeEvent(long Server, int Frame, long Offset, PoisonKind Kind, FleetFrameUse Use, bool Consumed, long BadPages, long Lines);

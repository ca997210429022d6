using HugeFault.Fleet.Dram;
using HugeFault.Mm;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>
/// A (pattern, 1 GiB frame) pair's own random draws and line: where one uncorrectable pattern's lines can be read. Its
/// frame and pattern are kept apart (<see cref="UeSites.Frames"/>, <see cref="UeSites.SitePattern"/>: what every event
/// reads, packed densely); what every frame of the pattern shares (when, how many lines, which kind) is its
/// <see cref="SitePattern"/>, kept once.
/// </summary>
internal struct Site
{
    /// <summary>Uniform for the demand-read time (its Exp(1) is taken when first needed, <see cref="DemandExp"/>); uniform for the guest's fate.</summary>
    public double DemandU, UKill;
    /// <summary>−ln(<see cref="DemandU"/>), or NaN until the site's frame first has an owner that reads it.</summary>
    public double DemandExp;
    /// <summary>Byte offset of the named line in the frame.</summary>
    public long Offset;
}

/// <summary>What the sites of one pattern share.</summary>
internal struct SitePattern
{
    /// <summary>The pattern exists in [Start, End).</summary>
    public double Start, End;
    /// <summary>The patrol scrub that finds it (+∞ if none reports it).</summary>
    public double Scrub;
    /// <summary>Bad cachelines, distinct 4 KiB pages and distinct 2 MiB regions in each frame.</summary>
    public long Lines, Pages, Regions;
    public byte Mode;
    public PoisonKind Kind;
}

/// <summary>
/// Turns a server's patterns into sites through the physical address map, in start order. Policy-independent; server i
/// draws the per-site randomness from stream 4i+1.
/// </summary>
internal sealed class UeSites
{
    private readonly FleetModel _m;
    private readonly ulong[] _frameBasis = new ulong[64];
    private readonly ulong[] _inFrame = new ulong[64];
    private readonly ulong[] _flip = new ulong[64];
    private Site[] _sites = new Site[256];
    private int[] _frames = new int[256], _sitePattern = new int[256];
    private SitePattern[] _patterns = new SitePattern[16];

    public UeSites(FleetModel model) => _m = model;

    public int Count { get; private set; }
    public Site[] Items => _sites;
    /// <summary>The 1 GiB frame of each site.</summary>
    public int[] Frames => _frames;
    /// <summary>The index in <see cref="Patterns"/> of each site's pattern.</summary>
    public int[] SitePattern => _sitePattern;
    /// <summary>The patterns the sites belong to (<see cref="SitePattern"/>).</summary>
    public SitePattern[] Patterns => _patterns;

    /// <summary>The pattern of site <paramref name="si"/>.</summary>
    public ref readonly SitePattern PatternOf(int si) => ref _patterns[_sitePattern[si]];

    public void Build(long index, ServerFaults faults, int patterns, DimmService dimms, ServerOutcome o)
    {
        var srng = Xoshiro256StarStar.ForStream(_m.Config.Seed, (ulong)index * 4 + 1);
        Count = 0;
        int patternCount = 0;
        var s = _m.Config.Server;
        bool scrubReports = _m.Config.Faults.ScrubReportsUe;
        int dramPatterns = 0;
        for (int i = 0; i < patterns; i++)
        {
            ref readonly var p = ref faults.Patterns[i];
            if (p.Start >= _m.Hours) continue;
            int d = faults.PatternDimm[i];
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
            double scrub = dimms.NextScrub(p.Start);
            // A transient pattern ends at the scrub that finds it (End == that scrub), so "≤ End" keeps it.
            if (!scrubReports || scrub > p.End || scrub >= _m.Hours) scrub = double.PositiveInfinity;
            long frames = ff.Frames;
            if (patternCount == _patterns.Length) Array.Resize(ref _patterns, 2 * patternCount);
            int pattern = patternCount++;
            ref var sp = ref _patterns[pattern];
            sp.Start = p.Start;
            sp.End = p.End;
            sp.Scrub = scrub;
            sp.Lines = ff.LinesPerFrame;
            sp.Pages = ff.PagesPerFrame;
            sp.Regions = ff.RegionsPerFrame;
            sp.Mode = (byte)modeIndex;
            sp.Kind = kind;
            if (_sites.Length < Count + frames)
            {
                int size = (int)Math.Max(Count + frames, _sites.Length * 2L);
                Array.Resize(ref _sites, size);
                Array.Resize(ref _frames, size);
                Array.Resize(ref _sitePattern, size);
            }
            // Frame fi's PA is the base XOR the basis vectors of fi's set bits. From frame fi − 1 to fi the bits 0..k flip
            // (k = fi's trailing zeros), so fi's PA is fi − 1's XOR the XOR of basis vectors 0..k.
            for (int b = 0; b < ff.FrameRank; b++) _flip[b] = _frameBasis[b] ^ (b > 0 ? _flip[b - 1] : 0);
            ulong pa = ff.BasePhysical;
            for (long fi = 0; fi < frames; fi++)
            {
                if (fi > 0) pa ^= _flip[System.Numerics.BitOperations.TrailingZeroCount(fi)];
                int frame = (int)(pa >> 30);
                _frames[Count] = frame;
                _sitePattern[Count] = pattern;
                ref var site = ref _sites[Count++];
                site.Offset = (long)(pa & ((1UL << 30) - 1));
                site.DemandU = srng.NextDoubleNonZero();
                site.DemandExp = double.NaN;
                site.UKill = srng.NextDouble();
                if (frame < _m.KernelFrames) o.Server[(int)ServerMetric.KernelUes]++;
            }
        }
        if (dramPatterns > 0) o.Server[(int)ServerMetric.ServersWithUe] = 1;
        SortByStart();
    }

    private Site[] _sorted = new Site[256];
    private int[] _sortedFrames = new int[256], _sortedPattern = new int[256];
    private (double Start, int From, int Count)[] _runs = new (double, int, int)[16];

    /// <summary>
    /// Sites in start order, stable. A pattern's sites are adjacent and share its start, so the runs of equal starts are
    /// sorted (insertion sort: stable, allocation-free; patterns are few) and then moved, each site once.
    /// </summary>
    private void SortByStart()
    {
        int runs = 0;
        bool sorted = true;
        for (int i = 0; i < Count;)
        {
            int j = i + 1;
            double start = PatternOf(i).Start;
            while (j < Count && PatternOf(j).Start == start) j++;
            if (runs == _runs.Length) Array.Resize(ref _runs, 2 * runs);
            if (runs > 0 && _runs[runs - 1].Start > start) sorted = false;
            _runs[runs++] = (start, i, j - i);
            i = j;
        }
        if (sorted) return;
        var r = _runs.AsSpan(0, runs);
        for (int i = 1; i < r.Length; i++)
        {
            var x = r[i];
            int j = i - 1;
            while (j >= 0 && r[j].Start > x.Start) { r[j + 1] = r[j]; j--; }
            r[j + 1] = x;
        }
        if (_sorted.Length < _sites.Length)
        {
            _sorted = new Site[_sites.Length];
            _sortedFrames = new int[_sites.Length];
            _sortedPattern = new int[_sites.Length];
        }
        int at = 0;
        foreach (var (_, from, n) in r)
        {
            Array.Copy(_sites, from, _sorted, at, n);
            Array.Copy(_frames, from, _sortedFrames, at, n);
            Array.Copy(_sitePattern, from, _sortedPattern, at, n);
            at += n;
        }
        (_sites, _sorted) = (_sorted, _sites);
        (_frames, _sortedFrames) = (_sortedFrames, _frames);
        (_sitePattern, _sortedPattern) = (_sortedPattern, _sitePattern);
    }
}

namespace HugeFault.Fleet;

/// <summary>
/// The tallies of one run on one server, for each policy that shares it: stranded 4 KiB pages per frame and in all,
/// integrated over time when they change (overall and per monthly bin, in 4 KiB-page-hours), and the running peaks of
/// page-table and extra memory. Policies that share a run may strand different amounts (a page kept allocated or
/// dissolved around its bad pages), so the stranded tallies are per policy. Written into <see cref="ServerOutcome"/>
/// at the end as exact integers.
/// </summary>
internal sealed class HostTally
{
    private const int PagesPerGiB = (int)FleetPolicies.PagesPerGiB;

    private readonly FleetModel _m;
    private readonly ServerOutcome _out;
    private readonly double _binLength;
    private readonly Member[] _members;
    private readonly PolicyFrameCounts<int> _strandedIn;

    private struct Member
    {
        public long Level;
        public double LastT, Hours, BinHours, BinEnd;
        public int Bin;
    }

    public HostTally(FleetModel model, ServerOutcome outcome)
    {
        _m = model;
        _out = outcome;
        int n = model.Policies.Length;
        _binLength = model.Hours / model.Bins;
        _members = new Member[n];
        _strandedIn = new PolicyFrameCounts<int>(n, model.Frames);
        PtNow = new long[n];
        PtPeak = new long[n];
        ExtraPeak = new long[n];
    }

    /// <summary>Host page-table bytes now and at peak, per policy (index into the model's policy list).</summary>
    public readonly long[] PtNow, PtPeak;
    /// <summary>Largest extra memory one recovery needed, per policy.</summary>
    public readonly long[] ExtraPeak;

    // The policies of the current run (the others' outcomes are written already and must not be touched).
    private readonly List<int> _run = new();

    /// <summary>Starts a run of <paramref name="policies"/> at <paramref name="t0"/>: nothing stranded before it.</summary>
    public void Start(double t0, ReadOnlySpan<int> policies)
    {
        _strandedIn.Clear();
        _run.Clear();
        foreach (int p in policies)
        {
            _run.Add(p);
            ref var m = ref _members[p];
            m = default;
            m.LastT = t0;
            while (m.Bin < _m.Bins && BinTime(m.Bin) <= t0) m.Bin++;
            m.BinEnd = m.Bin < _m.Bins ? BinTime(m.Bin) : double.PositiveInfinity;
        }
        Array.Clear(PtNow);
        Array.Clear(PtPeak);
        Array.Clear(ExtraPeak);
    }

    private double BinTime(int b) => (b + 1) * _binLength;

    /// <summary>Stranded pages frame <paramref name="f"/> accounts for under policy <paramref name="p"/>.</summary>
    public long StrandedIn(int p, int f) => _strandedIn.Get(p, f);

    /// <summary>Stranded pages of policy <paramref name="p"/> now.</summary>
    public long Stranded(int p) => _members[p].Level;

    /// <summary>Frame <paramref name="f"/> accounts for <paramref name="pages"/> stranded pages (at most a gigabyte) under <paramref name="p"/> from <paramref name="t"/> on.</summary>
    public void SetStranded(int p, int f, long pages, double t)
    {
        long v = Math.Clamp(pages, 0, PagesPerGiB);
        long old = _strandedIn.Get(p, f);
        if (v == old) return;
        _strandedIn.Set(p, f, (int)v);
        Move(p, v - old, t);
    }

    /// <summary>Policy <paramref name="p"/>'s stranded level changes by <paramref name="delta"/> pages at <paramref name="t"/> (integrated up to then first).</summary>
    private void Move(int p, long delta, double t)
    {
        ref var m = ref _members[p];
        // (again at the same time, as for the frames one patrol scrub finds, integrating adds nothing: BinEnd > LastT always)
        if (t != m.LastT) Integrate(p, ref m, t);
        m.Level += delta;
    }

    /// <summary>
    /// Frame <paramref name="f"/> accounts for <paramref name="pages"/> more stranded pages (at most a gigabyte in all)
    /// under each of <paramref name="policies"/> from <paramref name="t"/> on: <see cref="SetStranded"/> of each, in order.
    /// </summary>
    public void AddStranded(ReadOnlySpan<int> policies, int f, long pages, double t)
    {
        if (pages == 0) return;
        var row = _strandedIn.Row(f);
        foreach (int p in policies)
        {
            long old = row[p], v = Math.Clamp(old + pages, 0, PagesPerGiB);
            if (v == old) continue;
            row[p] = (int)v;
            Move(p, v - old, t);
        }
    }

    /// <summary>Every frame back to nothing stranded at <paramref name="t"/> (the host rebooted).</summary>
    public void Reboot(double t)
    {
        foreach (int p in _run)
        {
            ref var m = ref _members[p];
            Integrate(p, ref m, t);
            m.Level = 0;
        }
        _strandedIn.Clear();
        Array.Clear(PtNow);
    }

    /// <summary>Integrates policy <paramref name="p"/>'s stranded pages up to <paramref name="t"/>, overall and per monthly bin.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void Integrate(int p, ref Member m, double t)
    {
        if (t < m.BinEnd)
        {
            // within the current monthly bin (the common case)
            double held = m.Level * (t - m.LastT);
            m.BinHours += held;
            m.Hours += held;
            m.LastT = t;
            return;
        }
        IntegrateAcrossBins(p, ref m, t);
    }

    private void IntegrateAcrossBins(int p, ref Member m, double t)
    {
        double from = m.LastT;
        while (m.Bin < _m.Bins && from < t)
        {
            double to = Math.Min(t, m.BinEnd);
            m.BinHours += m.Level * (to - from);
            from = to;
            if (to >= m.BinEnd) FlushBin(p, ref m);
        }
        while (m.Bin < _m.Bins && m.BinEnd <= t) FlushBin(p, ref m);
        m.Hours += m.Level * (t - m.LastT);
        m.LastT = t;
    }

    private void FlushBin(int p, ref Member m)
    {
        _out.Series[p, m.Bin] = (long)Math.Round(m.BinHours);
        m.BinHours = 0;
        m.Bin++;
        m.BinEnd = m.Bin < _m.Bins ? BinTime(m.Bin) : double.PositiveInfinity;
    }

    public void AddPageTables(int policy, long bytes)
    {
        PtNow[policy] += bytes;
        if (PtNow[policy] > PtPeak[policy]) PtPeak[policy] = PtNow[policy];
    }

    public void NoteExtra(int policy, long bytes)
    {
        if (bytes > ExtraPeak[policy]) ExtraPeak[policy] = bytes;
    }

    /// <summary>Policy <paramref name="to"/>'s stranded tallies become a copy of <paramref name="from"/>'s (both in the run).</summary>
    public void CopyStranded(int from, int to)
    {
        _members[to] = _members[from];
        _strandedIn.Copy(from, to);
        for (int b = 0; b < _members[from].Bin; b++) _out.Series[to, b] = _out.Series[from, b];
    }

    /// <summary>Policy <paramref name="to"/>'s outcome gets <paramref name="from"/>'s stranded figures (its tallies were <paramref name="from"/>'s to the end; <see cref="Finish"/> of it done).</summary>
    public void CopyFinished(int from, int to)
    {
        _out.Policy[to, (int)PolicyMetric.StrandedPageHours] = _out.Policy[from, (int)PolicyMetric.StrandedPageHours];
        _out.Policy[to, (int)PolicyMetric.StrandedPagesEnd] = _out.Policy[from, (int)PolicyMetric.StrandedPagesEnd];
        for (int b = 0; b < _m.Bins; b++) _out.Series[to, b] = _out.Series[from, b];
    }

    /// <summary>Ends policy <paramref name="p"/>'s run at the mission's end and writes its time integrals.</summary>
    public void Finish(int p)
    {
        ref var m = ref _members[p];
        Integrate(p, ref m, _m.Hours);
        if (m.Bin < _m.Bins) FlushBin(p, ref m);
        _out.Policy[p, (int)PolicyMetric.StrandedPageHours] = (long)Math.Round(m.Hours);
        _out.Policy[p, (int)PolicyMetric.StrandedPagesEnd] = m.Level;
    }
}

namespace HugeFault.Fleet;

/// <summary>
/// The tallies of one policy run on one server: stranded capacity integrated over time (overall and per monthly bin, in
/// 4 KiB-page-hours), and the running peaks of page-table and extra memory of every policy that shares the run. Written
/// into <see cref="ServerOutcome"/> at the end as exact integers.
/// </summary>
internal sealed class HostTally
{
    private readonly FleetModel _m;
    private readonly ServerOutcome _out;
    private double _strandedHours, _lastT, _binHours, _binEnd;
    private int _bin, _policy;

    public HostTally(FleetModel model, ServerOutcome outcome)
    {
        _m = model;
        _out = outcome;
        PtNow = new long[model.Policies.Length];
        PtPeak = new long[model.Policies.Length];
        ExtraPeak = new long[model.Policies.Length];
    }

    /// <summary>Host page-table bytes now and at peak, per policy (index into the model's policy list).</summary>
    public readonly long[] PtNow, PtPeak;
    /// <summary>Largest extra memory one recovery needed, per policy.</summary>
    public readonly long[] ExtraPeak;

    /// <summary>Starts a run of policy <paramref name="policy"/> at <paramref name="t0"/>: nothing stranded before it.</summary>
    public void Start(int policy, double t0)
    {
        _policy = policy;
        _lastT = t0;
        _bin = 0;
        _binHours = 0;
        _strandedHours = 0;
        Array.Clear(PtNow);
        Array.Clear(PtPeak);
        Array.Clear(ExtraPeak);
        while (_bin < _m.Bins && BinTime(_bin) <= t0) _bin++;
        _binEnd = _bin < _m.Bins ? BinTime(_bin) : double.PositiveInfinity;
    }

    private double BinTime(int b) => (b + 1) * (_m.Hours / _m.Bins);

    /// <summary>Integrates <paramref name="stranded"/> pages, held since the last call, up to <paramref name="t"/>.</summary>
    public void Advance(double t, long stranded)
    {
        if (t < _binEnd)
        {
            // within the current monthly bin (the common case)
            double held = stranded * (t - _lastT);
            _binHours += held;
            _strandedHours += held;
            _lastT = t;
            return;
        }
        if (stranded != 0)
        {
            double from = _lastT;
            while (_bin < _m.Bins && from < t)
            {
                double to = Math.Min(t, BinTime(_bin));
                _binHours += stranded * (to - from);
                from = to;
                if (to >= BinTime(_bin)) FlushBin();
            }
        }
        else
        {
            while (_bin < _m.Bins && BinTime(_bin) <= t) FlushBin();
        }
        _strandedHours += stranded * (t - _lastT);
        _lastT = t;
    }

    private void FlushBin()
    {
        _out.Series[_policy, _bin] = (long)Math.Round(_binHours);
        _binHours = 0;
        _bin++;
        _binEnd = _bin < _m.Bins ? BinTime(_bin) : double.PositiveInfinity;
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

    /// <summary>Ends the run at the mission's end and writes the time integrals.</summary>
    public void Finish(long strandedEnd)
    {
        Advance(_m.Hours, strandedEnd);
        if (_bin < _m.Bins) FlushBin();
        _out.Policy[_policy, (int)PolicyMetric.StrandedPageHours] = (long)Math.Round(_strandedHours);
        _out.Policy[_policy, (int)PolicyMetric.StrandedPagesEnd] = strandedEnd;
    }
}

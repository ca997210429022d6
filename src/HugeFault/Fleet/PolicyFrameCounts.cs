namespace HugeFault.Fleet;

/// <summary>
/// A count per (policy, 1 GiB frame) for the policies sharing a run (stranded pages, page-table bytes), cleared frame by
/// frame: only frames touched since the last <see cref="Clear"/> are reset, so a run over a host whose errors touch a
/// few frames costs nothing per frame.
/// </summary>
internal sealed class PolicyFrameCounts
{
    private readonly long[][] _values;
    private readonly int[] _dirty;
    private readonly bool[] _isDirty;
    private int _dirtyCount;

    public PolicyFrameCounts(int policies, int frames)
    {
        _values = new long[policies][];
        for (int p = 0; p < policies; p++) _values[p] = new long[frames];
        _dirty = new int[frames];
        _isDirty = new bool[frames];
    }

    public long Get(int p, int f) => _values[p][f];

    /// <summary>True if some policy's count of frame <paramref name="f"/> may be non-zero.</summary>
    public bool Touched(int f) => _isDirty[f];

    public void Set(int p, int f, long v)
    {
        if (!_isDirty[f]) { _isDirty[f] = true; _dirty[_dirtyCount++] = f; }
        _values[p][f] = v;
    }

    /// <summary>Policy <paramref name="to"/>'s counts become <paramref name="from"/>'s.</summary>
    public void Copy(int from, int to)
    {
        long[] a = _values[from], b = _values[to];
        for (int i = 0; i < _dirtyCount; i++) b[_dirty[i]] = a[_dirty[i]];
    }

    /// <summary>Every count back to zero.</summary>
    public void Clear()
    {
        var dirty = _dirty.AsSpan(0, _dirtyCount);
        foreach (var a in _values)
            foreach (int f in dirty) a[f] = 0;
        foreach (int f in dirty) _isDirty[f] = false;
        _dirtyCount = 0;
    }
}

namespace HugeFault.Fleet;

/// <summary>
/// A count per (policy, 1 GiB frame) for the policies sharing a run (stranded pages, page-table bytes), cleared frame by
/// frame: only frames touched since the last <see cref="Clear"/> are reset, so a run over a host whose errors touch a
/// few frames costs nothing per frame. Stored frame-major: an event's loop over the run's policies reads one frame's
/// counts from adjacent words (one or two cache lines), not one line per policy. <typeparamref name="T"/> is the
/// narrowest type the counts fit (stranded pages of a gigabyte fit an int, page-table bytes need a long).
/// </summary>
internal sealed class PolicyFrameCounts<T> where T : unmanaged, System.Numerics.INumber<T>
{
    private readonly T[] _values;
    private readonly int _policies;
    private readonly int[] _dirty;
    private readonly bool[] _isDirty;
    private int _dirtyCount;

    public PolicyFrameCounts(int policies, int frames)
    {
        _policies = policies;
        _values = new T[policies * frames];
        _dirty = new int[frames];
        _isDirty = new bool[frames];
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public T Get(int p, int f) => _values[f * _policies + p];

    /// <summary>True if some policy's count of frame <paramref name="f"/> may be non-zero.</summary>
    public bool Touched(int f) => _isDirty[f];

    /// <summary><see cref="Touched"/> of every frame, indexed by frame (read only).</summary>
    public bool[] TouchedFrames => _isDirty;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void Set(int p, int f, T v)
    {
        if (!_isDirty[f]) { _isDirty[f] = true; _dirty[_dirtyCount++] = f; }
        _values[f * _policies + p] = v;
    }

    /// <summary>Frame <paramref name="f"/>'s counts, one per policy (marked touched: the caller may write them).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public Span<T> Row(int f)
    {
        if (!_isDirty[f]) { _isDirty[f] = true; _dirty[_dirtyCount++] = f; }
        return _values.AsSpan(f * _policies, _policies);
    }

    /// <summary>Policy <paramref name="to"/>'s counts become <paramref name="from"/>'s.</summary>
    public void Copy(int from, int to)
    {
        for (int i = 0; i < _dirtyCount; i++)
        {
            int at = _dirty[i] * _policies;
            _values[at + to] = _values[at + from];
        }
    }

    /// <summary>Every count back to zero.</summary>
    public void Clear()
    {
        var values = _values;
        int n = _policies;
        foreach (int f in _dirty.AsSpan(0, _dirtyCount))
        {
            // a handful of words per frame: stored here, not through a call per frame
            for (int i = f * n, end = i + n; i < end; i++) values[i] = T.Zero;
            _isDirty[f] = false;
        }
        _dirtyCount = 0;
    }
}

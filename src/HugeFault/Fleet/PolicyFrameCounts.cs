namespace HugeFault.Fleet;

/// <summary>
/// A count per (policy, 1 GiB frame) for the policies sharing a run (stranded pages, page-table bytes), cleared in O(1):
/// a frame's counts carry the generation that wrote them, <see cref="Clear"/> starts a new one, and a frame's counts are
/// zeroed when first touched in it (when its cache line is being written anyway), so a run over a host whose errors
/// touch a few frames costs nothing per frame. Stored frame-major: an event's loop over the run's policies reads one frame's
/// counts from adjacent words (one or two cache lines), not one line per policy. <typeparamref name="T"/> is the
/// narrowest type the counts fit (stranded pages of a gigabyte fit an int, page-table bytes need a long).
/// </summary>
internal sealed class PolicyFrameCounts<T> where T : unmanaged, System.Numerics.INumber<T>
{
    private readonly T[] _values;
    private readonly int _policies;
    /// <summary>Frames touched in this generation (for <see cref="Copy"/>), and the generation each frame's counts belong to.</summary>
    private readonly int[] _dirty, _stamp;
    private int _dirtyCount, _generation = 1;

    public PolicyFrameCounts(int policies, int frames)
    {
        _policies = policies;
        _values = new T[policies * frames];
        _dirty = new int[frames];
        _stamp = new int[frames];
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public T Get(int p, int f) => _stamp[f] == _generation ? _values[f * _policies + p] : T.Zero;

    /// <summary>True if some policy's count of frame <paramref name="f"/> may be non-zero.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool Touched(int f) => _stamp[f] == _generation;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void Set(int p, int f, T v) => Row(f)[p] = v;

    /// <summary>Frame <paramref name="f"/>'s counts, one per policy (marked touched: the caller may write them).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public Span<T> Row(int f)
    {
        var row = _values.AsSpan(f * _policies, _policies);
        if (_stamp[f] != _generation) Claim(f, row);
        return row;
    }

    /// <summary>Frame <paramref name="f"/>'s first touch in this generation: its counts from an earlier one are zeroed.</summary>
    private void Claim(int f, Span<T> row)
    {
        _stamp[f] = _generation;
        _dirty[_dirtyCount++] = f;
        row.Clear();
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

    /// <summary>Every count back to zero (a new generation; after 2^31 of them the stamps start over).</summary>
    public void Clear()
    {
        _dirtyCount = 0;
        if (++_generation == int.MaxValue)
        {
            Array.Clear(_stamp);
            _generation = 1;
        }
    }
}

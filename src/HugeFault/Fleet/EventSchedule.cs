namespace HugeFault.Fleet;

/// <summary>A UE event waiting to reach the kernel: site <see cref="Site"/> is read at <see cref="Time"/>.</summary>
internal struct Pending
{
    public double Time;
    public int Site;
    /// <summary>Read by the owning VM (action required) rather than found by the patrol scrub.</summary>
    public bool Consumed;
}

/// <summary>
/// Pending UE events of one policy run, a binary min-heap ordered by (time, site): keys are unique, so the order is a
/// pure function of the events. <see cref="Save"/>/<see cref="Restore"/> keep the heap of the first batch of sites,
/// which is scheduled before anything policy-specific happens and so is the same for every policy.
/// </summary>
internal sealed class PendingQueue
{
    private Pending[] _heap = new Pending[64];
    private Pending[] _saved = new Pending[64];
    private int _savedCount;

    public int Count { get; private set; }
    public bool Any => Count > 0;
    public ref readonly Pending Top => ref _heap[0];

    public void Clear() => Count = 0;

    private static bool Before(in Pending a, in Pending b) => a.Time < b.Time || (a.Time == b.Time && a.Site < b.Site);

    public void Push(Pending p)
    {
        if (Count == _heap.Length) Array.Resize(ref _heap, _heap.Length * 2);
        int i = Count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!Before(p, _heap[parent])) break;
            _heap[i] = _heap[parent];
            i = parent;
        }
        _heap[i] = p;
    }

    public Pending Pop()
    {
        var top = _heap[0];
        var last = _heap[--Count];
        int i = 0;
        while (true)
        {
            int c = 2 * i + 1;
            if (c >= Count) break;
            if (c + 1 < Count && Before(_heap[c + 1], _heap[c])) c++;
            if (!Before(_heap[c], last)) break;
            _heap[i] = _heap[c];
            i = c;
        }
        if (Count > 0) _heap[i] = last;
        return top;
    }

    public void Save()
    {
        if (_saved.Length < Count) _saved = new Pending[_heap.Length];
        Array.Copy(_heap, _saved, Count);
        _savedCount = Count;
    }

    public void Restore()
    {
        if (_heap.Length < _savedCount) _heap = new Pending[_saved.Length];
        Array.Copy(_saved, _heap, _savedCount);
        Count = _savedCount;
    }
}

/// <summary>VM departures (end of lifetime): a binary min-heap of (end, slot, generation), stale entries skipped by the caller.</summary>
internal sealed class DepartureHeap
{
    private (double End, int Slot, int Gen)[] _heap = new (double, int, int)[256];
    private (double, int, int)[] _saved = [];
    private int _savedCount;

    public int Count { get; private set; }
    public double NextEnd => Count > 0 ? _heap[0].End : double.PositiveInfinity;

    public void Clear() => Count = 0;

    private static bool Less((double End, int Slot, int Gen) a, double end, int slot) => a.End < end || (a.End == end && a.Slot < slot);

    public void Push(double end, int slot, int gen)
    {
        if (Count == _heap.Length) Array.Resize(ref _heap, _heap.Length * 2);
        int i = Count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (Less(_heap[parent], end, slot)) break;
            _heap[i] = _heap[parent];
            i = parent;
        }
        _heap[i] = (end, slot, gen);
    }

    public (double End, int Slot, int Gen) Pop()
    {
        var top = _heap[0];
        var last = _heap[--Count];
        int i = 0;
        while (true)
        {
            int c = 2 * i + 1;
            if (c >= Count) break;
            if (c + 1 < Count && Less(_heap[c + 1], _heap[c].End, _heap[c].Slot)) c++;
            if (Less(last, _heap[c].End, _heap[c].Slot)) break;
            _heap[i] = _heap[c];
            i = c;
        }
        if (Count > 0) _heap[i] = last;
        return top;
    }

    public void Save()
    {
        if (_saved.Length < Count) _saved = new (double, int, int)[_heap.Length];
        Array.Copy(_heap, _saved, Count);
        _savedCount = Count;
    }

    public void Restore()
    {
        if (_heap.Length < _savedCount) _heap = new (double, int, int)[_saved.Length];
        Array.Copy(_saved, _heap, _savedCount);
        Count = _savedCount;
    }
}

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
/// Pending UE events of one policy run in (time, site) order: keys are unique, so the order is a pure function of the
/// events. Sites start in batches (a pattern starts in all its frames at once); a batch is sorted on its own
/// (<see cref="Add"/> then <see cref="Commit"/>) and merged into the queue, which is popped from its head.
/// <see cref="Save"/>/<see cref="Restore"/> keep the queue after the first batch, which is scheduled before anything
/// policy-specific happens and so is the same for every policy.
/// </summary>
internal sealed class PendingQueue
{
    private Pending[] _items = new Pending[64];
    private Pending[] _merge = new Pending[64];
    private Pending[] _batch = new Pending[64];
    private Pending[] _saved = new Pending[64];
    private int _head, _count, _batchCount, _savedCount;

    /// <summary>The rescan after the run's last host panic: read lazily, merged with the queue in (time, site) order.</summary>
    public readonly Rescan Rescan = new();

    public bool Any => _head < _count || Rescan.Any;

    /// <summary>The time of the next event (only when <see cref="Any"/>).</summary>
    public double TopTime
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        get => RescanFirst ? Rescan.Time : _items[_head].Time;
    }

    private bool RescanFirst
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        get => Rescan.Any && (_head == _count || Rescan.Time < _items[_head].Time || (Rescan.Time == _items[_head].Time && Rescan.Site < _items[_head].Site));
    }

    /// <summary>Drops every pending event (the rescan included; its list of sites stays).</summary>
    public void Clear()
    {
        _head = _count = _batchCount = 0;
        Rescan.Stop();
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool Before(in Pending a, in Pending b) => a.Time < b.Time || (a.Time == b.Time && a.Site < b.Site);

    /// <summary>Adds an event of the current batch (visible after <see cref="Commit"/>).</summary>
    public void Add(Pending p)
    {
        if (_batchCount == _batch.Length) Array.Resize(ref _batch, _batch.Length * 2);
        _batch[_batchCount++] = p;
    }

    /// <summary>Sorts the batch and merges it into the queue.</summary>
    public void Commit()
    {
        if (_batchCount == 0) return;
        var batch = _batch.AsSpan(0, _batchCount);
        Sort(batch);
        int rest = _count - _head;
        if (_merge.Length < rest + batch.Length) _merge = new Pending[Math.Max(rest + batch.Length, 2 * _merge.Length)];
        int i = _head, j = 0, k = 0;
        while (i < _count && j < batch.Length) _merge[k++] = Before(batch[j], _items[i]) ? batch[j++] : _items[i++];
        while (i < _count) _merge[k++] = _items[i++];
        while (j < batch.Length) _merge[k++] = batch[j++];
        (_items, _merge) = (_merge, _items);
        _head = 0;
        _count = k;
        _batchCount = 0;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public Pending Pop() => RescanFirst ? Rescan.Pop() : _items[_head++];

    private Pending[] _radix = new Pending[64];
    /// <summary>The radix sort's eight byte histograms (one pass over the keys fills them all).</summary>
    private readonly int[] _counts = new int[8 * 256];

    /// <summary>
    /// Sorts a batch by (time, site). A batch is added in increasing site order, so a stable sort by time alone gives
    /// it: an LSD radix sort on the time's bits (non-negative doubles order like their bit patterns), skipping the bytes
    /// all keys share; insertion sort for short runs.
    /// </summary>
    private void Sort(Span<Pending> a)
    {
        // The batch's latest time is its patrol scrub's, shared by every site not read before it: those are in site order
        // already. Move them to the end (stable) and sort the rest.
        double last = double.NegativeInfinity;
        foreach (ref readonly var p in a) if (p.Time > last) last = p.Time;
        if (_partition.Length < a.Length) _partition = new Pending[Math.Max(a.Length, 2 * _partition.Length)];
        int early = 0, late = 0;
        foreach (ref readonly var p in a)
            if (p.Time < last) a[early++] = p;
            else _partition[late++] = p;
        _partition.AsSpan(0, late).CopyTo(a[early..]);
        SortTimes(a[..early]);
    }

    private Pending[] _partition = new Pending[64];

    /// <summary>Stable sort by time.</summary>
    private void SortTimes(Span<Pending> a)
    {
        if (a.Length <= 32)
        {
            for (int i = 1; i < a.Length; i++)
            {
                var x = a[i];
                int j = i - 1;
                while (j >= 0 && Before(x, a[j])) { a[j + 1] = a[j]; j--; }
                a[j + 1] = x;
            }
            return;
        }
        if (_radix.Length < a.Length) _radix = new Pending[Math.Max(a.Length, 2 * _radix.Length)];
        // Every byte's histogram in one pass (a scatter pass permutes the keys, so the histograms stay right).
        var counts = _counts.AsSpan();
        counts.Clear();
        foreach (ref readonly var p in a)
        {
            ulong k = BitConverter.DoubleToUInt64Bits(p.Time);
            counts[(int)(k & 0xFF)]++;
            counts[256 + (int)((k >> 8) & 0xFF)]++;
            counts[512 + (int)((k >> 16) & 0xFF)]++;
            counts[768 + (int)((k >> 24) & 0xFF)]++;
            counts[1024 + (int)((k >> 32) & 0xFF)]++;
            counts[1280 + (int)((k >> 40) & 0xFF)]++;
            counts[1536 + (int)((k >> 48) & 0xFF)]++;
            counts[1792 + (int)(k >> 56)]++;
        }
        var src = a;
        var dst = _radix.AsSpan(0, a.Length);
        bool inA = true;
        ulong first = BitConverter.DoubleToUInt64Bits(a[0].Time);
        for (int d = 0; d < 8; d++)
        {
            int shift = d * 8;
            var c = counts.Slice(d * 256, 256);
            // a byte every key shares (in any order of the keys, so the first key's tells)
            if (c[(int)((first >> shift) & 0xFF)] == src.Length) continue;
            int sum = 0;
            for (int b = 0; b < 256; b++) { int n = c[b]; c[b] = sum; sum += n; }
            foreach (ref readonly var p in src) dst[c[(int)((BitConverter.DoubleToUInt64Bits(p.Time) >> shift) & 0xFF)]++] = p;
            var t = src; src = dst; dst = t;
            inA = !inA;
        }
        if (!inA) src.CopyTo(a);
    }

    public void Save()
    {
        int n = _count - _head;
        if (_saved.Length < n) _saved = new Pending[Math.Max(n, 2 * _saved.Length)];
        Array.Copy(_items, _head, _saved, 0, n);
        _savedCount = n;
    }

    public void Restore()
    {
        if (_items.Length < _savedCount) _items = new Pending[_saved.Length];
        Array.Copy(_saved, _items, _savedCount);
        _head = 0;
        _count = _savedCount;
        _batchCount = 0;
    }
}

/// <summary>
/// The permanent sites still present at a policy run's last host panic, each found again by the first patrol scrub after
/// the reboot: one scrub event per site at that time, in site order, produced lazily. A host that panics at the first
/// event after every reboot so handles one event per panic instead of listing every site each time. A site whose pattern
/// ended before the rescan is marked dead when passed (time only moves forward within a run, so it never comes back)
/// and dropped from the list at the next rescan.
/// </summary>
internal sealed class Rescan
{
    private int[] _sites = new int[64];
    private UeSites? _items;
    private int _count, _dead, _pos;

    /// <summary>Time of the rescan events.</summary>
    public double Time { get; private set; }
    public bool Any => _pos < _count;
    /// <summary>Site of the next rescan event (only when <see cref="Any"/>).</summary>
    public int Site => _sites[_pos];

    /// <summary>Forgets every site (a new run).</summary>
    public void Reset()
    {
        _count = _dead = 0;
        Stop();
    }

    /// <summary>Adds site <paramref name="si"/> (above every site added so far) to the list.</summary>
    public void Add(int si)
    {
        if (_count == _sites.Length) Array.Resize(ref _sites, _sites.Length * 2);
        _sites[_count++] = si;
    }

    /// <summary>No rescan events pending (the list stays, and may grow: <see cref="Start"/> reads it again).</summary>
    public void Stop() => _pos = int.MaxValue;

    /// <summary>Schedules a scrub event at <paramref name="time"/> for every listed site whose pattern is still there then.</summary>
    public void Start(double time, UeSites items)
    {
        if (_dead > 0)
        {
            int kept = 0;
            for (int i = 0; i < _count; i++) if (_sites[i] >= 0) _sites[kept++] = _sites[i];
            _count = kept;
            _dead = 0;
        }
        Time = time;
        _items = items;
        _pos = 0;
        Skip();
    }

    public Pending Pop()
    {
        var p = new Pending { Time = Time, Site = _sites[_pos++], Consumed = false };
        Skip();
        return p;
    }

    private void Skip()
    {
        while (_pos < _count)
        {
            int si = _sites[_pos];
            if (si >= 0 && Time < _items!.PatternOf(si).End) return;
            if (si >= 0) { _sites[_pos] = -1; _dead++; }
            _pos++;
        }
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

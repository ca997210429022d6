using System.Numerics;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>What one 1 GiB physical frame of a host is used for, as the fleet tracks it.</summary>
internal enum FrameState : byte
{
    /// <summary>A free page of the 1 GiB hugetlb pool.</summary>
    Free,
    /// <summary>A healthy pool page backing a VM's guest RAM.</summary>
    Guest,
    /// <summary>A damaged pool page its VM still holds (all or part of it inaccessible).</summary>
    Held,
    /// <summary>
    /// No longer a 1 GiB page of the pool and owned by nobody: dissolved into 4 KiB pages (only its poisoned ones lost)
    /// or kept allocated while poisoned (the whole gigabyte lost until the host reboots); which of the two is a matter
    /// of stranded capacity only, tallied per policy (<see cref="HostTally"/>).
    /// </summary>
    Broken,
    /// <summary>Host kernel memory.</summary>
    Kernel,
    /// <summary>Memory of 4 KiB users.</summary>
    User4k,
}

/// <summary>
/// The 1 GiB frames of one host and the VMs placed on them: frame states and owners, the free-page bitmap, first-fit
/// placement, arrivals, departures and the stationary refill, and the capacity accounting that goes with frames
/// (stranded 4 KiB pages, page-table memory). Reset per policy run from a snapshot of the host at the first site.
/// </summary>
internal sealed partial class HostFrames
{

    private readonly FleetModel _m;
    internal readonly byte[] State;
    internal readonly int[] Owner;
    /// <summary>Poisoned 4 KiB pages quarantined in the frame.</summary>
    internal readonly int[] Raw;
    /// <summary>The class of the first error that made a <see cref="FrameState.Held"/> frame what it is (its later errors and release depend on it).</summary>
    internal readonly int[] HeldBy;
    private readonly int[] _next;
    private readonly ulong[] _freeBits;
    private int _firstFreeWord;
    private Vm[] _vms = new Vm[256];
    private int[] _freeSlots = new int[64];
    private int _freeSlotCount;

    internal struct Vm
    {
        public double End, UEnlightened;
        /// <summary>The hotness multiplier's polar pair (<see cref="Distributions.PolarPair"/>), and the multiplier once read (NaN before: <see cref="HotOf"/>).</summary>
        public double HotU, HotS, Hot;
        public int Size, FirstFrame, Gen;
        /// <summary>Frames of the VM that are <see cref="FrameState.Held"/> (damaged, so its exit changes stranded capacity).</summary>
        public int Held;
        public bool Alive;
        /// <summary>Its frames are the run FirstFrame − Size + 1 … FirstFrame (linked in that order, highest first).</summary>
        public bool Run;
    }

    // Frames whose State/Owner/next/Raw may differ from the snapshot (restored one by one).
    private readonly int[] _dirty;
    private readonly bool[] _isDirty;
    private int _dirtyCount;
    private bool _allDirty;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void Touch(int f)
    {
        // after a reboot every frame is restored anyway: no list to keep
        if (_allDirty || _isDirty[f]) return;
        _isDirty[f] = true;
        _dirty[_dirtyCount++] = f;
    }

    /// <summary>1 GiB pool pages that are damaged now (held, dissolved or kept).</summary>
    public int DamagedPool { get; private set; }

    private static bool IsDamaged(FrameState s) => s is FrameState.Held or FrameState.Broken;

    /// <summary>Sets frame <paramref name="f"/>'s state (keeping the damaged-page count).</summary>
    public void SetState(int f, FrameState s)
    {
        Touch(f);
        var old = (FrameState)State[f];
        if (IsDamaged(old) != IsDamaged(s)) DamagedPool += IsDamaged(s) ? 1 : -1;
        State[f] = (byte)s;
    }

    /// <summary>The VM's frame <paramref name="f"/> is now damaged but still its own; <paramref name="by"/> is the first error's class.</summary>
    public void SetHeld(int f, int by)
    {
        if (StateOf(f) != FrameState.Held && Owner[f] >= 0) _vms[Owner[f]].Held++;
        SetState(f, FrameState.Held);
        HeldBy[f] = by;
    }

    public void AddRaw(int f, long pages)
    {
        Touch(f);
        Raw[f] += (int)pages;
    }

    public HostFrames(FleetModel model)
    {
        _m = model;
        int frames = model.Frames;
        State = new byte[frames];
        Owner = new int[frames];
        Raw = new int[frames];
        HeldBy = new int[frames];
        _next = new int[frames];
        _freeBits = new ulong[(frames + 63) / 64];
        Departures = new DepartureHeap();
        _dirty = new int[frames];
        _isDirty = new bool[frames];
        _snapState = new byte[frames];
        _snapOwner = new int[frames];
        _snapNext = new int[frames];
        _snapFree = new ulong[_freeBits.Length];
    }

    public DepartureHeap Departures { get; }
    public int FreeCount { get; private set; }
    public int VmCount { get; private set; }

    public ref Vm VmAt(int slot) => ref _vms[slot];
    public FrameState StateOf(int f) => (FrameState)State[f];

    /// <summary>The host after boot or a DIMM swap and reboot: kernel, 4 KiB users, an empty healthy 1 GiB pool.</summary>
    public void Reset()
    {
        State.AsSpan(0, _m.KernelFrames).Fill((byte)FrameState.Kernel);
        State.AsSpan(_m.KernelFrames, _m.PoolStart - _m.KernelFrames).Fill((byte)FrameState.User4k);
        State.AsSpan(_m.PoolStart).Fill((byte)FrameState.Free);
        Owner.AsSpan().Fill(-1);
        // _next needs no reset: it is read only along a VM's list, and placing a frame in one sets it
        Array.Clear(Raw);
        SetFreeRange(_m.PoolStart, _m.Frames);
        FreeCount = _m.PoolFrames;
        VmCount = 0;
        _freeSlotCount = 0;
        Departures.Clear();
        DamagedPool = 0;
        _allDirty = true;
    }

    /// <summary>Marks frames [from, to) free and every other frame taken, a 64-bit word at a time.</summary>
    private void SetFreeRange(int from, int to)
    {
        Array.Clear(_freeBits);
        for (int w = from >> 6; w <= (to - 1) >> 6; w++) _freeBits[w] = RangeMask(w, from, to);
        _firstFreeWord = from >> 6;
    }

    // ---------------------------------------------------------------- VMs

    public long LiveVms()
    {
        long n = 0;
        for (int i = 0; i < VmCount; i++) if (_vms[i].Alive) n++;
        return n;
    }

    /// <summary>Stationary start: VMs drawn from the size mix until the pool reaches its target occupancy, residual lifetimes exponential (memoryless).</summary>
    public void Fill(double t, ulong seed, long index, int generation)
    {
        var rng = Xoshiro256StarStar.ForStream(seed + 0x9E3779B97F4A7C15UL * (ulong)generation, (ulong)index * 4 + 3);
        long owned = 0;
        for (int i = 0; i < VmCount; i++) if (_vms[i].Alive) owned += _vms[i].Size;
        long room = Math.Min((long)Math.Floor(_m.Config.Workload.PoolOccupancy * _m.PoolFrames) - owned, FreeCount);
        // An empty pool (after a reboot) fills from its first frame up, VM after VM: the frames first fit would give.
        bool empty = VmCount == 0 && _freeSlotCount == 0 && FreeCount == _m.PoolFrames;
        int next = _m.PoolStart;
        for (int guard = 0; guard < 100_000; guard++)
        {
            int size = _m.VmSizes[_m.VmSizeTable.Sample(ref rng)];
            double life = Distributions.Exponential(ref rng, 1.0 / _m.LifetimeHours);
            var hot = DrawHot(ref rng);
            double uEnl = rng.NextDouble();
            if (size > room) break;
            if (empty)
            {
                PlaceRun(t, size, life, hot, uEnl, next);
                next += size;
            }
            else Place(t, size, life, hot, uEnl);
            room -= size;
        }
        if (empty && next > _m.PoolStart)
        {
            int from = _m.PoolStart;
            State.AsSpan(from, next - from).Fill((byte)FrameState.Guest);
            for (int i = from >> 6; i <= (next - 1) >> 6; i++) _freeBits[i] &= ~RangeMask(i, from, next);
            _firstFreeWord = (next - 1) >> 6;
        }
    }

    /// <summary>
    /// A VM of an empty pool's fill takes frames [<paramref name="f0"/>, <paramref name="f0"/> + <paramref name="size"/>),
    /// the next ones up (<see cref="Fill"/> marks them guest frames and takes them from the bitmap once, for all VMs).
    /// </summary>
    private void PlaceRun(double t, int size, double life, (double U, double S) hot, double uEnl, int f0)
    {
        if (VmCount == _vms.Length) Array.Resize(ref _vms, _vms.Length * 2);
        int slot = VmCount++;
        ref var vm = ref NewVm(slot, t, size, life, hot, uEnl);
        FreeCount -= size;
        int end = f0 + size;
        if (!_allDirty) for (int f = f0; f < end; f++) Touch(f);
        Owner.AsSpan(f0, size).Fill(slot);
        _next[f0] = -1;
        for (int f = f0 + 1; f < end; f++) _next[f] = f - 1;
        vm.FirstFrame = end - 1;
        vm.Run = true;
        Departures.Push(vm.End, slot, vm.Gen);
    }

    /// <summary>The draws of a VM's hotness (lognormal, mean 1); the exp and log are taken by <see cref="HotOf"/>, for the few VMs an error reaches.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private (double U, double S) DrawHot(ref Xoshiro256StarStar rng) =>
        _m.Config.Workload.HotnessSigma > 0 ? Distributions.PolarPair(ref rng) : (double.NaN, double.NaN);

    /// <summary>The VM's hotness: Distributions.LogNormal(−σ²/2, σ) of its draws, bit for bit (1 when σ = 0).</summary>
    public double HotOf(int slot)
    {
        ref var vm = ref _vms[slot];
        if (double.IsNaN(vm.Hot))
        {
            double s = _m.Config.Workload.HotnessSigma;
            vm.Hot = s > 0 ? Math.Exp(-0.5 * s * s + s * Distributions.NormalFromPolar(vm.HotU, vm.HotS)) : 1.0;
        }
        return vm.Hot;
    }

    /// <summary>A VM arrives (stream 4i+2): placed first fit if the pool has room, else dropped.</summary>
    public void Arrive(ref Xoshiro256StarStar rng, double t)
    {
        int size = _m.VmSizes[_m.VmSizeTable.Sample(ref rng)];
        double life = Distributions.Exponential(ref rng, 1.0 / _m.LifetimeHours);
        var hot = DrawHot(ref rng);
        double uEnl = rng.NextDouble();
        if (size <= FreeCount) Place(t, size, life, hot, uEnl);
    }

    private void Place(double t, int size, double life, (double U, double S) hot, double uEnl)
    {
        int slot;
        if (_freeSlotCount > 0) slot = _freeSlots[--_freeSlotCount];
        else
        {
            if (VmCount == _vms.Length) Array.Resize(ref _vms, _vms.Length * 2);
            slot = VmCount++;
        }
        ref var vm = ref NewVm(slot, t, size, life, hot, uEnl);
        FreeCount -= size;
        vm.FirstFrame = PlaceFrames(slot, size, out vm.Run);
        Departures.Push(vm.End, slot, vm.Gen);
    }

    /// <summary>Slot <paramref name="slot"/> holds a new live VM (its frames not placed yet).</summary>
    private ref Vm NewVm(int slot, double t, int size, double life, (double U, double S) hot, double uEnl)
    {
        ref var vm = ref _vms[slot];
        vm.End = t + life;
        (vm.HotU, vm.HotS) = hot;
        vm.Hot = double.NaN;
        vm.UEnlightened = uEnl;
        vm.Size = size;
        vm.Gen++;
        vm.Alive = true;
        vm.Held = 0;
        vm.FirstFrame = -1;
        vm.Run = false;
        return ref vm;
    }

    /// <summary>
    /// First fit: the <paramref name="size"/> lowest free frames become the VM's (the frames TakeFreeFrame would return
    /// one by one), linked from the highest down; returns the highest. When they are one run of frames (always on a
    /// host filled after a reboot) a span at a time, else a bitmap word at a time.
    /// </summary>
    private int PlaceFrames(int slot, int size, out bool run)
    {
        run = false;
        int w0 = _firstFreeWord;
        while (_freeBits[w0] == 0) w0++;
        int f0 = (w0 << 6) + BitOperations.TrailingZeroCount(_freeBits[w0]);
        if (FreeRun(f0, size))
        {
            int end = f0 + size;
            if (!_allDirty) for (int f = f0; f < end; f++) Touch(f);
            State.AsSpan(f0, size).Fill((byte)FrameState.Guest);
            Owner.AsSpan(f0, size).Fill(slot);
            _next[f0] = -1;
            for (int f = f0 + 1; f < end; f++) _next[f] = f - 1;
            for (int i = w0; i <= (end - 1) >> 6; i++) _freeBits[i] &= ~RangeMask(i, f0, end);
            _firstFreeWord = (end - 1) >> 6;
            run = true;
            return end - 1;
        }
        int first = -1, left = size;
        for (int i = _firstFreeWord; left > 0; i++)
        {
            ulong b = _freeBits[i];
            if (b == 0) continue;
            _firstFreeWord = i;
            int w = i << 6;
            while (b != 0 && left > 0)
            {
                int f = w + BitOperations.TrailingZeroCount(b);
                b &= b - 1;
                left--;
                Touch(f);
                State[f] = (byte)FrameState.Guest;
                Owner[f] = slot;
                _next[f] = first;
                first = f;
            }
            _freeBits[i] = b;
        }
        return first;
    }

    /// <summary>The bits of word <paramref name="i"/> for frames in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    private static ulong RangeMask(int i, int from, int to)
    {
        int lo = Math.Max(from, i << 6) - (i << 6), hi = Math.Min(to, (i + 1) << 6) - (i << 6);
        return hi - lo == 64 ? ulong.MaxValue : ((1UL << (hi - lo)) - 1) << lo;
    }

    /// <summary>Are frames [<paramref name="f0"/>, <paramref name="f0"/> + <paramref name="size"/>) all free?</summary>
    private bool FreeRun(int f0, int size)
    {
        int end = f0 + size;
        if (end > _m.Frames) return false;
        for (int i = f0 >> 6; i <= (end - 1) >> 6; i++)
        {
            ulong need = RangeMask(i, f0, end);
            if ((_freeBits[i] & need) != need) return false;
        }
        return true;
    }

    /// <summary>Lowest free pool frame (first fit over the bitmap, from the lowest word that may hold one).</summary>
    public int TakeFreeFrame()
    {
        for (int i = _firstFreeWord; i < _freeBits.Length; i++)
        {
            ulong b = _freeBits[i];
            if (b == 0) continue;
            _firstFreeWord = i;
            int f = (i << 6) + BitOperations.TrailingZeroCount(b);
            _freeBits[i] = b & (b - 1);
            FreeCount--;
            return f;
        }
        throw new InvalidOperationException("no free frame although the count said so");
    }

    /// <summary>Is frame <paramref name="f"/> in the free-page bitmap?</summary>
    internal bool IsFree(int f) => (_freeBits[f >> 6] & (1UL << (f & 63))) != 0;

    private void MarkFree(int f)
    {
        _freeBits[f >> 6] |= 1UL << (f & 63);
        FreeCount++;
        if ((f >> 6) < _firstFreeWord) _firstFreeWord = f >> 6;
    }

    /// <summary>A free frame leaves the pool (dissolved by an error).</summary>
    public void MarkNotFree(int f)
    {
        Touch(f);
        if ((_freeBits[f >> 6] & (1UL << (f & 63))) != 0)
        {
            _freeBits[f >> 6] &= ~(1UL << (f & 63));
            FreeCount--;
        }
    }

    /// <summary>
    /// The VM exits (lifetime over or killed) and the slot is reused: each healthy frame without counts in
    /// <paramref name="releaseAlso"/> (its page tables) goes back to the pool here, every other frame is released by <paramref name="release"/>.
    /// </summary>
    public void EndVm(int slot, Action<int> release, PolicyFrameCounts<long> releaseAlso)
    {
        ref var vm = ref _vms[slot];
        vm.Alive = false;
        if (vm.Run)
        {
            // one run of frames, linked from the highest down: walked by index, not along the links
            for (int f = vm.FirstFrame, low = vm.FirstFrame - vm.Size; f > low; f--) Release(f, release, releaseAlso);
        }
        else
        {
            for (int f = vm.FirstFrame; f >= 0;)
            {
                int next = _next[f];
                Release(f, release, releaseAlso);
                f = next;
            }
        }
        vm.FirstFrame = -1;
        if (_freeSlotCount == _freeSlots.Length) Array.Resize(ref _freeSlots, _freeSlots.Length * 2);
        _freeSlots[_freeSlotCount++] = slot;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void Release(int f, Action<int> release, PolicyFrameCounts<long> releaseAlso)
    {
        if (State[f] == (byte)FrameState.Guest && !releaseAlso.Touched(f)) ReturnToPool(f);
        else release(f);
        Touch(f);
        Owner[f] = -1;
        _next[f] = -1;
    }

    /// <summary>A released healthy frame goes back to the pool.</summary>
    public void ReturnToPool(int f)
    {
        SetState(f, FrameState.Free);
        MarkFree(f);
    }

    /// <summary>
    /// The VM's data of <paramref name="oldFrame"/> now lives in free frame <paramref name="newFrame"/> (taken by the
    /// caller): the new frame joins the VM's list at its head; the old one, no longer owned, stays linked until the VM
    /// exits (its release does nothing), which keeps this O(1).
    /// </summary>
    public void ReplaceInVm(int slot, int oldFrame, int newFrame)
    {
        ref var vm = ref _vms[slot];
        Touch(oldFrame);
        Touch(newFrame);
        Owner[newFrame] = slot;
        State[newFrame] = (byte)FrameState.Guest;
        _next[newFrame] = vm.FirstFrame;
        vm.FirstFrame = newFrame;
        vm.Run = false;
        Owner[oldFrame] = -1;
    }

    /// <summary>The VM's data of <paramref name="frame"/> moved out of the pool: the frame is no longer its (it stays linked, see <see cref="ReplaceInVm"/>).</summary>
    public void RemoveFromVm(int slot, int frame)
    {
        Touch(frame);
        Owner[frame] = -1;
    }

    /// <summary>Frames of a VM (a linked list through the frame array).</summary>
    public int NextFrameOf(int f) => _next[f];

    /// <summary>Once no error can come, only departures of VMs holding a damaged frame still change stranded capacity.</summary>
    public double NextDamagedDeparture()
    {
        double best = double.PositiveInfinity;
        for (int i = 0; i < VmCount; i++)
        {
            ref readonly var vm = ref _vms[i];
            if (vm.Alive && vm.Held > 0 && vm.End < best) best = vm.End;
        }
        if (best < double.PositiveInfinity)
        {
            // Drop heap entries up to it so the departure path pops the right VM.
            while (Departures.Count > 0 && Departures.NextEnd < best) Departures.Pop();
        }
        return best;
    }
}

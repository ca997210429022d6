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

    /// <summary>
    /// Free frame <paramref name="f"/> is dissolved around its bad pages: dissolve_free_hugetlb_folio() (mm/hugetlb.c),
    /// which memory_failure() reaches through __page_handle_poison() for a free hugetlb folio. The frame leaves the pool
    /// for good; its raw pages were counted by the caller (<see cref="AddRaw"/>).
    /// </summary>
    public void DissolveFree(int f)
    {
        MarkNotFree(f);
        SetState(f, FrameState.Broken);
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
            // one run of frames, linked from the highest down: walked by index, not along the links, and given back
            // to the pool a span at a time when every frame is healthy and has no page tables (the common exit)
            int low = vm.FirstFrame - vm.Size + 1;
            if (Healthy(low, vm.Size, releaseAlso)) ReturnRun(low, vm.Size);
            else for (int f = vm.FirstFrame; f >= low; f--) Release(f, release, releaseAlso);
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

    /// <summary>Are frames [<paramref name="low"/>, <paramref name="low"/> + <paramref name="n"/>) all healthy guest frames without counts in <paramref name="pageTables"/>?</summary>
    private bool Healthy(int low, int n, PolicyFrameCounts<long> pageTables)
    {
        for (int f = low; f < low + n; f++)
            if (State[f] != (byte)FrameState.Guest || pageTables.Touched(f)) return false;
        return true;
    }

    /// <summary>Healthy frames [<paramref name="low"/>, <paramref name="low"/> + <paramref name="n"/>) of an exiting VM go back to the pool: <see cref="Release"/> of each, a span at a time.</summary>
    private void ReturnRun(int low, int n)
    {
        int end = low + n;
        if (!_allDirty) for (int f = low; f < end; f++) Touch(f);
        State.AsSpan(low, n).Fill((byte)FrameState.Free);
        Owner.AsSpan(low, n).Fill(-1);
        _next.AsSpan(low, n).Fill(-1);
        for (int i = low >> 6; i <= (end - 1) >> 6; i++) _freeBits[i] |= RangeMask(i, low, end);
        FreeCount += n;
        if ((low >> 6) < _firstFreeWord) _firstFreeWord = low >> 6;
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

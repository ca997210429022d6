using System.Numerics;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

// Placing VMs on the host's 1 GiB frames: the stationary fill (an empty pool after a reboot fills from its first frame
// up, VM after VM), arrivals, first-fit placement (a span at a time when the lowest free frames are one run, else a
// bitmap word at a time), and the draws that go with a VM (size, lifetime, hotness, whether its guest is enlightened).
internal sealed partial class HostFrames
{
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
        if (empty && next > _m.PoolStart) TakeRun(_m.PoolStart, next);
    }

    /// <summary>Free frames [<paramref name="from"/>, <paramref name="to"/>) become guest frames, out of the free bitmap.</summary>
    private void TakeRun(int from, int to)
    {
        State.AsSpan(from, to - from).Fill((byte)FrameState.Guest);
        for (int i = from >> 6; i <= (to - 1) >> 6; i++) _freeBits[i] &= ~RangeMask(i, from, to);
        _firstFreeWord = (to - 1) >> 6;
    }

    /// <summary>
    /// A VM of an empty pool's fill takes frames [<paramref name="f0"/>, <paramref name="f0"/> + <paramref name="size"/>),
    /// the next ones up (<see cref="Fill"/> takes them from the pool once for all VMs: <see cref="TakeRun"/>).
    /// </summary>
    private void PlaceRun(double t, int size, double life, (double U, double S) hot, double uEnl, int f0)
    {
        if (VmCount == _vms.Length) Array.Resize(ref _vms, _vms.Length * 2);
        int slot = VmCount++;
        ref var vm = ref NewVm(slot, t, size, life, hot, uEnl);
        FreeCount -= size;
        vm.FirstFrame = LinkRun(slot, f0, size);
        vm.Run = true;
        Departures.Push(vm.End, slot, vm.Gen);
    }

    /// <summary>Frames [<paramref name="f0"/>, <paramref name="f0"/> + <paramref name="size"/>) become VM <paramref name="slot"/>'s, linked from the highest down; returns the highest (their state and free bits are the caller's).</summary>
    private int LinkRun(int slot, int f0, int size)
    {
        int end = f0 + size;
        if (!_allDirty) for (int f = f0; f < end; f++) Touch(f);
        Owner.AsSpan(f0, size).Fill(slot);
        _next[f0] = -1;
        for (int f = f0 + 1; f < end; f++) _next[f] = f - 1;
        return end - 1;
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
            TakeRun(f0, f0 + size);
            run = true;
            return LinkRun(slot, f0, size);
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
}

using CsCheck;
using HugeFault.Fleet;
using HugeFault.Simulation;
using HugeFault.Tests.Properties;

namespace HugeFault.Tests.Fleet;

/// <summary>
/// Every policy run starts from the host as it was at the first site (<see cref="HostFrames.Save"/>); restoring it
/// copies back only the frames that changed. Any sequence of what a run does to frames and VMs must restore exactly.
/// </summary>
public class HostFramesProperties
{
    private sealed record Image(byte[] State, int[] Owner, int[] Raw, int[] Next, int Free, int Vms, int Damaged, string VmList);

    private static Image Take(HostFrames h, FleetModel m)
    {
        var next = new int[m.Frames];
        for (int f = 0; f < m.Frames; f++) next[f] = h.NextFrameOf(f);
        var vms = string.Join(";", Enumerable.Range(0, h.VmCount).Select(i =>
        {
            var v = h.VmAt(i);
            return $"{v.Alive}/{v.Size}/{v.FirstFrame}/{v.Held}/{v.End}";
        }));
        return new Image((byte[])h.State.Clone(), (int[])h.Owner.Clone(), (int[])h.Raw.Clone(), next, h.FreeCount, h.VmCount, h.DamagedPool, vms);
    }

    private static void Same(Image a, Image b)
    {
        Assert.Equal(a.State, b.State);
        Assert.Equal(a.Owner, b.Owner);
        Assert.Equal(a.Raw, b.Raw);
        Assert.Equal(a.Next, b.Next);
        Assert.Equal((a.Free, a.Vms, a.Damaged, a.VmList), (b.Free, b.Vms, b.Damaged, b.VmList));
    }

    private static readonly FleetModel Model = new(new FleetConfig { Servers = 1, Policies = ["mainline"] });
    private static readonly PolicyFrameCounts<long> NoPageTables = new(1, Model.Frames);

    /// <summary>Free frames are free pool frames nobody owns, counted; every live VM's list holds exactly its own frames.</summary>
    private static void Consistent(HostFrames h)
    {
        var free = Enumerable.Range(0, Model.Frames).Where(h.IsFree).ToList();
        Assert.Equal(h.FreeCount, free.Count);
        Assert.All(free, f => Assert.Equal((FrameState.Free, -1, true), (h.StateOf(f), h.Owner[f], f >= Model.PoolStart)));
        for (int i = 0; i < h.VmCount; i++)
        {
            if (!h.VmAt(i).Alive) continue;
            var frames = new List<int>();
            for (int f = h.VmAt(i).FirstFrame; f >= 0; f = h.NextFrameOf(f)) frames.Add(f);
            Assert.Equal(h.VmAt(i).Size, frames.Count);
            Assert.All(frames, f => Assert.Equal((i, FrameState.Guest), (h.Owner[f], h.StateOf(f))));
        }
        int owned = Enumerable.Range(0, h.VmCount).Where(i => h.VmAt(i).Alive).Sum(i => h.VmAt(i).Size);
        Assert.Equal(owned, Enumerable.Range(0, Model.Frames).Count(f => h.Owner[f] >= 0));
    }

    [Fact]
    public void A_VM_gets_the_lowest_free_frames_linked_from_the_highest_down_whether_they_are_one_run_or_scattered_and_an_empty_pool_fills_from_the_bottom()
    {
        // Placement takes a span at a time when the lowest free frames are one run, a bitmap word at a time otherwise:
        // either way first fit. Steps: arrivals, exits, frames taken out of the pool (which scatter the free frames).
        Pbt.Run(Step.Array[1, 60], steps =>
        {
            var h = new HostFrames(Model);
            h.Reset();
            h.Fill(0, seed: 5, index: 3, generation: 0);
            Consistent(h);
            // an empty pool fills from its first frame up, VM after VM
            Assert.Equal(Enumerable.Range(Model.PoolStart, Model.PoolFrames - h.FreeCount), Enumerable.Range(0, Model.Frames).Where(f => h.Owner[f] >= 0));
            var rng = Xoshiro256StarStar.Create(17);
            double t = 1;
            int placed = 0;
            foreach (var (op, vmPick, framePick) in steps)
            {
                t += 1;
                var live = Enumerable.Range(0, h.VmCount).Where(i => h.VmAt(i).Alive).ToList();
                switch (op % 3)
                {
                    case 0:
                        var free = Enumerable.Range(0, Model.Frames).Where(h.IsFree).ToList();
                        var gens = Enumerable.Range(0, h.VmCount).Select(i => (h.VmAt(i).Alive, h.VmAt(i).Gen)).ToList();
                        h.Arrive(ref rng, t);
                        int slot = Enumerable.Range(0, h.VmCount).FirstOrDefault(i => h.VmAt(i).Alive && (i >= gens.Count || gens[i] != (true, h.VmAt(i).Gen)), -1);
                        if (slot < 0) break;
                        placed++;
                        var got = new List<int>();
                        for (int f = h.VmAt(slot).FirstFrame; f >= 0; f = h.NextFrameOf(f)) got.Add(f);
                        var want = free.Take(h.VmAt(slot).Size).Reverse().ToList();
                        Assert.Equal(want, got);
                        Assert.All(got, f => Assert.False(h.IsFree(f)));
                        Assert.All(got, f => Assert.Equal((slot, FrameState.Guest), (h.Owner[f], h.StateOf(f))));
                        Assert.Equal(free.Count - got.Count, Enumerable.Range(0, Model.Frames).Count(h.IsFree));
                        break;
                    case 1 when live.Count > 0:
                        h.EndVm(live[vmPick % live.Count], h.ReturnToPool, NoPageTables);
                        break;
                    case 2:
                        h.MarkNotFree(Model.PoolStart + framePick % Model.PoolFrames);
                        break;
                }
                Consistent(h);
            }
        }, iter: 300, stream: 1417, print: s => string.Join(" ", s.Select(x => $"{x.Op}/{x.Vm}/{x.Frame}")));
    }

    /// <summary>One thing a run does: (operation, VM choice, frame choice).</summary>
    private static readonly Gen<(int Op, int Vm, int Frame)> Step = Gen.Select(Gen.Int[0, 7], Gen.Int[0, 63], Gen.Int[0, 127]);

    [Fact]
    public void Restoring_after_any_run_gives_back_the_saved_host()
    {
        Pbt.Run(Step.Array[1, 40], steps =>
        {
            var h = new HostFrames(Model);
            h.Reset();
            h.Fill(0, seed: 3, index: 7, generation: 0);
            h.Save();
            var saved = Take(h, Model);
            var rng = Xoshiro256StarStar.Create(11);
            double t = 1;
            foreach (var (op, vmPick, framePick) in steps)
            {
                t += 1;
                var live = Enumerable.Range(0, h.VmCount).Where(i => h.VmAt(i).Alive).ToList();
                int slot = live.Count > 0 ? live[vmPick % live.Count] : -1;
                var frames = new List<int>();
                if (slot >= 0) for (int f = h.VmAt(slot).FirstFrame; f >= 0; f = h.NextFrameOf(f)) frames.Add(f);
                int frame = frames.Count > 0 ? frames[framePick % frames.Count] : -1;
                switch (op)
                {
                    case 0: h.Arrive(ref rng, t); break;
                    case 1 when slot >= 0:
                        h.EndVm(slot, f => { if (h.StateOf(f) == FrameState.Guest) h.ReturnToPool(f); else h.SetState(f, FrameState.Broken); }, NoPageTables);
                        break;
                    case 2 when frame >= 0 && h.FreeCount > 0:
                        int nf = h.TakeFreeFrame();
                        h.ReplaceInVm(slot, frame, nf);
                        h.SetState(frame, FrameState.Broken);
                        break;
                    case 3 when frame >= 0:
                        h.RemoveFromVm(slot, frame);
                        h.SetState(frame, FrameState.Broken);
                        break;
                    case 4 when frame >= 0: h.SetHeld(frame, 5); h.AddRaw(frame, 3); break;
                    case 5: h.MarkNotFree(Model.PoolStart + framePick % Model.PoolFrames); break;
                    case 6 when frame >= 0: h.AddRaw(frame, 1); break;
                }
            }
            h.Restore();
            Same(saved, Take(h, Model));
        }, iter: 200, stream: 1414, print: s => string.Join(" ", s.Select(x => $"{x.Op}/{x.Vm}/{x.Frame}")));
    }
}

/// <summary>Pending UE events come out in (time, site) order whatever the batches, ties and sizes.</summary>
public class PendingQueueProperties
{
    [Fact]
    public void Batches_merged_into_the_queue_pop_in_time_then_site_order()
    {
        // Batches of sites in increasing order (as a run schedules them), times from few distinct values (ties) or many.
        var batch = Gen.Select(Gen.Int[0, 300], Gen.Int[1, 6], (n, distinct) => (n, distinct));
        Pbt.Run(batch.Array[1, 5], batches =>
        {
            var q = new PendingQueue();
            var all = new List<Pending>();
            var rng = Xoshiro256StarStar.Create((ulong)batches.Length * 31 + (ulong)batches.Sum(b => b.n));
            int site = 0;
            foreach (var (n, distinct) in batches)
            {
                for (int i = 0; i < n; i++)
                {
                    double t = distinct == 1 ? 24.0 : Math.Floor(rng.NextDouble() * distinct * 10) / 10 + (distinct > 3 ? rng.NextDouble() : 0);
                    var p = new Pending { Time = t, Site = site++ };
                    q.Add(p);
                    all.Add(p);
                }
                q.Commit();
            }
            var expected = all.OrderBy(p => p.Time).ThenBy(p => p.Site).Select(p => p.Site).ToList();
            var got = new List<int>();
            while (q.Any) got.Add(q.Pop().Site);
            Assert.Equal(expected, got);
        }, iter: 200, stream: 1415, print: b => string.Join(" ", b.Select(x => $"{x.n}x{x.distinct}")));
    }
}

using HugeFault.Mm;

namespace HugeFault.Fleet.Replay;

/// <summary>
/// The host the log is replayed on: physical memory as 1 GiB frames; frames [<see cref="PoolStartGiB"/>,
/// <see cref="PoolStartGiB"/> + <see cref="PoolGiB"/>) are the hugetlb pool, the rest host kernel and 4 KiB memory; VMs of
/// <see cref="VmGiB"/> each are placed from the start of the pool, <see cref="Vms"/> of them.
/// </summary>
public sealed record ReplayHost(int MemoryGiB, int PoolStartGiB, int PoolGiB, int VmGiB, int Vms)
{
    /// <summary>The fleet's default server (1 TiB; 16 GiB kernel + 48 GiB 4 KiB users below the pool; 85 % of the pool in 16 GiB VMs).</summary>
    public static ReplayHost Default(FleetConfig c, int vmGiB = 16)
    {
        int start = c.Workload.KernelGiB + c.Workload.User4kGiB;
        return new ReplayHost(c.Server.Frames1G, start, c.PoolFrames, vmGiB, (int)(c.PoolFrames * c.Workload.PoolOccupancy / vmGiB));
    }

    public string? Problem() =>
        MemoryGiB < 1 ? "--memory-gib must be at least 1"
        : PoolStartGiB < 0 || PoolGiB < 1 || PoolStartGiB + PoolGiB > MemoryGiB ? $"the pool [{PoolStartGiB}, {PoolStartGiB + PoolGiB}) GiB must lie inside the host's {MemoryGiB} GiB (--pool-start-gib, --pool-gib)"
        : VmGiB < 1 || Vms < 0 || (long)Vms * VmGiB > PoolGiB ? $"{Vms} VMs of {VmGiB} GiB do not fit in the {PoolGiB} GiB pool (--vms, --vm-gib)"
        : null;

    /// <summary>The VM whose guest RAM the frame backs, −1 for a free pool page, −2 outside the pool.</summary>
    public int OwnerOf(long frame) =>
        frame < PoolStartGiB || frame >= PoolStartGiB + PoolGiB ? -2 : frame - PoolStartGiB < (long)Vms * VmGiB ? (int)((frame - PoolStartGiB) / VmGiB) : -1;
}

/// <summary>Where an error landed and what it did under one policy (<c>HostPanicked</c>: handling it loaded the poison in kernel mode outside a machine-check-safe copy, so the host panicked and every VM died).</summary>
public sealed record ReplayOutcome(long GuestLostBytes, long StrandedBytes, long Mces, bool VmDied, bool Repaired, bool HostPanicked = false);

/// <summary>One error of the log: where it landed, its outcome under each policy (null when it could not be placed) and
/// the fault it belongs to with its lines in this frame (<see cref="FaultShapes"/>; null when not placed).</summary>
public sealed record ReplayedError(MemoryErrorRecord Error, long Frame, string Where, IReadOnlyList<ReplayOutcome>? Outcomes, ReplayShape? Shape = null);

/// <summary>Per policy, over the whole log.</summary>
public sealed record ReplayTotals(string Policy, long GuestLostBytes, long StrandedBytes, long Mces, int VmsKilled, int Repairs, int VmsHitSurviving, int HostPanics = 0);

public sealed record ReplayResult(ReplayHost Host, IReadOnlyList<string> Policies, IReadOnlyList<ReplayedError> Errors, IReadOnlyList<ReplayTotals> Totals, double GuestKernelFraction);

/// <summary>
/// Replays an operator's uncorrected errors, in time order (stable: log order for equal or missing times), through each policy's per-event effects — the fleet's
/// <see cref="EffectTable"/>, read off the policy's kernel model (<c>memory_failure()</c> and the design's handling of
/// the 1 GiB hugetlb folio) on the canonical host — on a stated host layout. Errors are taken as permanent poison (a log
/// cannot tell a transient one). Per frame and policy: a first error on a healthy page uses the table's first-error
/// effect; later errors on a page the VM still holds damaged use its further-error effect; an error on a page already
/// dissolved, or outside the pool, quarantines its bad 4 KiB pages (<c>memory_failure()</c> on base pages), for every policy alike.
/// <para>An error is one event of its fault (<see cref="FaultShapes"/>): the fault's first error in a frame carries every bad
/// line the fault has there (the table's effect at n pages in m regions, and its multi-page panic, <see cref="EventEffect.Panics"/>);
/// the fault's later errors in that frame are those lines reported again and cost nothing more. An error whose log gives
/// no DIMM row/column is one bad line.</para>
/// </summary>
public static class ErrorReplay
{
    public const long PageBytes = 4096;

    /// <summary>The first error whose address lies beyond the host's memory (a log from a bigger host, or a wrong --memory-gib).</summary>
    public static string? Check(MemoryErrorLog log, ReplayHost host) =>
        log.Errors.FirstOrDefault(e => e.Address is { } a && (long)(a >> 30) >= host.MemoryGiB) is { } bad
            ? $"{bad.Source}: address 0x{bad.Address:x} is beyond the stated host's {host.MemoryGiB} GiB; give the host's size with --memory-gib"
            : null;

    public static ReplayResult Run(MemoryErrorLog log, ReplayHost host, FleetConfig config)
    {
        var policies = config.Policies;
        var placed = log.Errors.OrderBy(e => e.Time ?? DateTimeOffset.MaxValue).Select(e => (Error: e, Frame: e.Address is { } a ? (long)(a >> 30) : -1)).ToList();
        var shapes = FaultShapes.Classify(placed, config.Server);
        var perPolicy = new List<ReplayOutcome?[]>();
        var totals = new List<ReplayTotals>();
        foreach (var p in policies)
        {
            var table = EffectTable.For(p, config.ParametersOf(p));
            var outcomes = new ReplayOutcome?[placed.Count];
            var held = new Dictionary<long, int>();     // frame → class of the first error, while its VM holds it damaged
            var broken = new HashSet<long>();           // dissolved or quarantined frames
            var dead = new HashSet<int>();
            int free = host.PoolGiB - host.Vms * host.VmGiB, killed = 0, repairs = 0, hitSurviving = 0, panics = 0;
            long lost = 0, stranded = 0, mces = 0;
            for (int i = 0; i < placed.Count; i++)
            {
                var (e, f) = placed[i];
                if (f < 0) continue;
                var shape = shapes[i]!;
                if (shape.Lead != i) { outcomes[i] = new ReplayOutcome(0, 0, 0, false, false); continue; } // its lines were handled at the fault's first error here
                long pages = shape.Pages, regions = shape.Regions;
                int owner = host.OwnerOf(f);
                if (owner >= 0 && dead.Contains(owner)) owner = -1; // its VM is gone: the page is back in the pool
                ReplayOutcome o;
                if (owner == -2 || broken.Contains(f))
                    o = new ReplayOutcome(0, pages * PageBytes, 0, false, false);
                else if (owner == -1)
                {
                    var fx = table.First(EventClass.FreeId(PoisonKind.Permanent, free > 1));
                    o = Outcome(fx, false, pages, regions);
                    if (!fx.Repaired) { broken.Add(f); free--; }
                }
                else
                {
                    int id = EventClass.MappedId(PoisonKind.Permanent, e.Consumed, free > 0, enlightened: false);
                    bool further = held.TryGetValue(f, out int by);
                    var fx = further ? table.Further(by, id) : table.First(id);
                    o = Outcome(fx, fx.GuestDied.At(pages, regions) > 0, pages, regions);
                    if (o.VmDied) { dead.Add(owner); killed++; held.Remove(f); }
                    else if (o.Mces > 0) hitSurviving++;
                    if (!fx.Repaired && !o.VmDied && !further)
                    {
                        if (fx.Backing is FrameBacking.SamePage or FrameBacking.Unreachable) held[f] = id;
                        else { broken.Add(f); if (fx.Backing == FrameBacking.OtherHugePage && free > 0) free--; }
                    }
                }
                if (o.HostPanicked)
                {
                    // Every VM still running dies; the host reboots with a fresh pool and the same VMs placed again
                    // (the next scrub finds the permanent lines anew, as the fleet's reboot does).
                    panics++;
                    killed += host.Vms - dead.Count;
                    o = o with { VmDied = owner >= 0 };
                    held.Clear(); broken.Clear(); dead.Clear();
                    free = host.PoolGiB - host.Vms * host.VmGiB;
                }
                if (o.Repaired) repairs++;
                lost += o.GuestLostBytes; stranded += o.StrandedBytes; mces += o.Mces;
                outcomes[i] = o;
            }
            perPolicy.Add(outcomes);
            totals.Add(new ReplayTotals(p, lost, stranded, mces, killed, repairs, hitSurviving, panics));
        }
        var errors = placed.Select((x, i) => new ReplayedError(x.Error, x.Frame, Where(host, x.Frame),
            x.Frame < 0 ? null : perPolicy.Select(o => o[i]!).ToList(), shapes[i])).ToList();
        return new ReplayResult(host, policies, errors, totals, config.Guest.GuestKernelFraction);
    }

    // A panic ends everything on the host before the event's own costs (as the fleet's UeEffects.Apply): only the deaths count.
    private static ReplayOutcome Outcome(EventEffect fx, bool died, long pages, long regions) => fx.Panics(pages)
        ? new(0, 0, 0, false, false, true)
        : new(Math.Max(0, fx.GuestLost.At(pages, regions)), Math.Max(0, fx.Stranded.At(pages, regions)), Math.Max(0, fx.Mces.At(pages, regions)), died, fx.Repaired);

    private static string Where(ReplayHost host, long frame) => frame < 0 ? "no address" : host.OwnerOf(frame) switch
    {
        -2 => $"GiB {frame}: host kernel / 4 KiB memory",
        -1 => $"GiB {frame}: free 1 GiB page",
        int vm => $"GiB {frame}: VM {vm}",
    };
}

using HugeFault.Mm;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>
/// The per-server event schedule of one policy run: site starts, UE events (demand reads and patrol scrubs), VM
/// arrivals and departures, DIMM swaps, merged in time order, each UE event handled by the policy.
/// </summary>
internal sealed partial class PolicyRun
{
    private const long PagesPerGiB = FleetPolicies.PagesPerGiB;

    private readonly FleetModel _m;
    private readonly ServerOutcome _out;
    private readonly UeSites _sites;
    private readonly DimmService _dimms;
    private readonly HostFrames _host;
    private readonly HostTally _tally;
    private readonly PendingQueue _pending = new();
    private readonly long[][] _framePt;
    private readonly Action<int> _release;
    private readonly Func<int, bool> _damaged;
    private int _policy;

    public PolicyRun(FleetModel model, ServerOutcome outcome, UeSites sites, DimmService dimms)
    {
        _m = model;
        _out = outcome;
        _sites = sites;
        _dimms = dimms;
        _host = new HostFrames(model);
        _tally = new HostTally(model, outcome);
        _framePt = new long[model.Policies.Length][];
        for (int p = 0; p < _framePt.Length; p++) _framePt[p] = new long[model.Frames];
        _release = ReleaseFrame;
        _damaged = Damaged;
    }

    /// <summary>Optional observer of every UE event the first policy handles (tests sample real events with it).</summary>
    public Action<FleetUeEvent>? Observer { get; set; }

    /// <summary>Gaps longer than this (one mean VM lifetime, at least 30 days) are skipped by a stationary refill.</summary>
    private double JumpHours => Math.Max(720.0, _m.LifetimeHours);

    /// <summary>Runs policy <paramref name="pi"/> (and the policies sharing its decisions) over server <paramref name="index"/>'s sites.</summary>
    public void Run(long index, int pi)
    {
        _policy = pi;
        var o = _out;
        ulong seed = _m.Config.Seed;
        var sites = _sites.Items;
        int siteCount = _sites.Count;
        var swaps = _dimms.Swaps;
        double t0 = sites[0].Start;
        if (swaps.Length > 0) t0 = Math.Min(t0, swaps[0]);
        // The host at t0 is the same for every policy: build it once, then copy it.
        if (pi == 0)
        {
            ResetHost();
            _host.Fill(t0, seed, index, 0);
            _host.Save();
        }
        else
        {
            _host.Restore();
            ClearFramePt();
        }
        _tally.Start(pi, t0);
        int replacementsDone = 0;
        var arrivals = Xoshiro256StarStar.ForStream(seed, (ulong)index * 4 + 2);
        double rate = _m.ArrivalRatePerHour;
        double nextArrival = rate > 0 ? t0 + Distributions.Exponential(ref arrivals, rate) : double.PositiveInfinity;
        int nextSite = 0;
        _pending.Clear();
        double hours = _m.Hours;
        double scrubHours = _m.Config.Faults.ScrubHours;
        var departures = _host.Departures;
        while (true)
        {
            double tSite = nextSite < siteCount ? sites[nextSite].Start : double.PositiveInfinity;
            double tPend = _pending.Any ? _pending.Top.Time : double.PositiveInfinity;
            double tRep = replacementsDone < swaps.Length ? swaps[replacementsDone] : double.PositiveInfinity;
            bool workToCome = nextSite < siteCount || _pending.Any || replacementsDone < swaps.Length;
            double tArr = workToCome ? nextArrival : double.PositiveInfinity;
            // Once nothing left can cause an error, only departures of damaged VMs still change stranded capacity.
            double tDep = workToCome ? departures.NextEnd : _host.NextDamagedDeparture(_damaged);
            double tWork = Math.Min(tSite, tRep);
            double lastStart = nextSite > 0 ? sites[nextSite - 1].Start : t0;
            if (!_pending.Any && tWork < hours && tArr < tWork && tArr > lastStart + scrubHours && tWork - tArr > JumpHours)
            {
                // A long quiet gap (decided from policy-independent times only): let the VMs present now depart, then
                // refill to the stationary occupancy at the next site instead of simulating months of churn.
                while (departures.Count > 0 && departures.NextEnd < tWork)
                {
                    var top = departures.Pop();
                    ref var vm = ref _host.VmAt(top.Slot);
                    if (!vm.Alive || vm.Gen != top.Gen) continue;
                    _tally.Advance(top.End, _host.Stranded);
                    _host.EndVm(top.Slot, _release);
                }
                _host.Fill(tWork, seed, index, 1 + swaps.Length + nextSite * (swaps.Length + 1) + replacementsDone);
                nextArrival = tWork + Distributions.Exponential(ref arrivals, rate);
                continue;
            }
            double t = Math.Min(Math.Min(Math.Min(tSite, tPend), Math.Min(tRep, tArr)), tDep);
            if (t >= hours) break;
            _tally.Advance(t, _host.Stranded);
            if (t == tRep)
            {
                replacementsDone++;
                o.Policy[pi, (int)PolicyMetric.LiveMigrations] += _host.LiveVms();
                ResetHost();
                // Refill only if something can still happen on this host (the VMs present matter only to later errors).
                if (nextSite < siteCount || replacementsDone < swaps.Length) _host.Fill(t, seed, index, replacementsDone);
                _pending.Clear();
            }
            else if (t == tDep)
            {
                var top = departures.Pop();
                ref var vm = ref _host.VmAt(top.Slot);
                if (vm.Alive && vm.Gen == top.Gen) _host.EndVm(top.Slot, _release);
            }
            else if (t == tArr)
            {
                _host.Arrive(ref arrivals, t);
                nextArrival = t + Distributions.Exponential(ref arrivals, rate);
            }
            else if (t == tPend)
            {
                // Patrol scrub finds many lines at one instant: handle every event due now in one go.
                do Handle(_pending.Pop());
                while (_pending.Any && _pending.Top.Time == t);
            }
            else
            {
                // A pattern spanning many frames starts in all of them at once.
                do Schedule(nextSite++);
                while (nextSite < siteCount && sites[nextSite].Start == t);
            }
        }
        _tally.Finish(_host.Stranded);
        Finish(pi);
    }

    private void ResetHost()
    {
        _host.Reset();
        ClearFramePt();
        Array.Clear(_tally.PtNow);
    }

    private void ClearFramePt()
    {
        foreach (var a in _framePt) Array.Clear(a);
    }

    /// <summary>At the site's start: when will this policy's host first see it, and how (consumed by the owner, or found by the scrub)?</summary>
    private void Schedule(int si)
    {
        ref readonly var s = ref _sites.Items[si];
        double demand = double.PositiveInfinity;
        int owner = _host.Owner[s.Frame];
        double touches = _m.Config.Workload.TouchesPerLineHour;
        if (owner >= 0 && !Unreachable(s.Frame) && touches > 0)
        {
            double rate = s.Lines * touches * _host.VmAt(owner).Hot;
            demand = s.Start + s.DemandExp / rate;
            if (demand >= s.End) demand = double.PositiveInfinity;
        }
        double t = Math.Min(demand, s.Scrub);
        if (t >= _m.Hours) return;
        _pending.Push(new Pending { Time = t, Site = si, Consumed = demand <= s.Scrub });
    }

    private void AddPt(int p, int f, long bytes)
    {
        _framePt[p][f] += bytes;
        _tally.AddPageTables(p, bytes);
    }

    private void Kill(int slot)
    {
        if (slot < 0 || !_host.VmAt(slot).Alive) return;
        _out.Policy[_policy, (int)PolicyMetric.VmsKilled]++;
        _host.EndVm(slot, _release);
    }
}

/// <summary>Where a UE event lands, as the observer reports it.</summary>
public enum FleetFrameUse : byte { FreeHuge, MappedHuge, Kernel, User4k, AlreadyPoisoned }

/// <summary>One UE event of the fleet (for sampling in tests and tools).</summary>
/// <param name="Server">Server index.</param>
/// <param name="Frame">1 GiB frame.</param>
/// <param name="Offset">Byte offset of the named cacheline within the frame.</param>
/// <param name="Kind">Permanent, transient or deposited.</param>
/// <param name="Use">What the frame held.</param>
/// <param name="Consumed">Action required (a demand read) rather than found by patrol scrub.</param>
/// <param name="BadPages">Distinct 4 KiB pages of the frame with errors.</param>
/// <param name="Lines">Bad cachelines in the frame.</param>
public readonly record struct FleetUeEvent(long Server, int Frame, long Offset, PoisonKind Kind, FleetFrameUse Use, bool Consumed, long BadPages, long Lines);

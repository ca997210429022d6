using HugeFault.Mm;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>
/// The per-server event schedule of one policy run: site starts, UE events (demand reads and patrol scrubs), VM
/// arrivals and departures, DIMM swaps, merged in time order; each UE event is handled by <see cref="Handle"/>. Policies
/// whose effects leave the host in the same state on every event of the server follow the leader's run (equal effects,
/// <see cref="EventEffect.Trajectory"/>, or effects that differ only in what a VM dying of the event lost) and keep their
/// own tallies of guest memory, fallbacks, page tables and extra memory; one that disagrees is dropped and run later.
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
    private readonly GuestFate _fate;
    private readonly EffectTable[] _tables;
    private readonly double _enlightenedFraction, _touchesPerLineHour;
    private readonly int _mappings;
    private readonly PendingQueue _pending = new();
    private readonly Action<int> _release;
    private int _policy;
    private readonly int[] _members;
    /// <summary>Sites of the first batch (scheduled once per server, in the first policy's run).</summary>
    private int _firstBatchEnd;

    public PolicyRun(FleetModel model, ServerOutcome outcome, UeSites sites, DimmService dimms)
    {
        _m = model;
        _out = outcome;
        _sites = sites;
        _dimms = dimms;
        _host = new HostFrames(model);
        _tally = new HostTally(model, outcome);
        _fate = model.Fate;
        _tables = model.Tables;
        _enlightenedFraction = model.Config.Guest.EnlightenedFraction;
        _mappings = model.Config.Workload.MappingsPerPage;
        _touchesPerLineHour = model.Config.Workload.TouchesPerLineHour;
        _followers = new int[model.Policies.Length];
        _fx = new EventEffect[model.Policies.Length];
        _members = new int[model.Policies.Length];
        _framePt = new PolicyFrameCounts<long>(model.Policies.Length, model.Frames);
        _release = ReleaseFrame;
    }

    /// <summary>Optional observer of every UE event the first policy handles (tests sample real events with it).</summary>
    public Action<FleetUeEvent>? Observer { get; set; }

    /// <summary>Gaps longer than this (one mean VM lifetime, at least 30 days) are skipped by a stationary refill.</summary>
    private double JumpHours => Math.Max(720.0, _m.LifetimeHours);

    /// <summary>
    /// Runs policy <paramref name="pi"/> over server <paramref name="index"/>'s sites, with the policies flagged in
    /// <paramref name="candidates"/> following it; returns how many followed to the end (<see cref="Followers"/>).
    /// </summary>
    public int Run(long index, int pi, ReadOnlySpan<bool> candidates)
    {
        _policy = pi;
        _followerCount = 0;
        for (int q = 0; q < candidates.Length; q++) if (candidates[q] && q != pi) _followers[_followerCount++] = q;
        StartMembers();
        var o = _out;
        ulong seed = _m.Config.Seed;
        int siteCount = _sites.Count;
        var swaps = _dimms.Swaps;
        double t0 = _sites.PatternOf(0).Start;
        if (swaps.Length > 0) t0 = Math.Min(t0, swaps[0]);
        // The host at t0 is the same for every policy: build it once, then copy it.
        if (pi == 0)
        {
            _firstBatchEnd = 0;
            _host.Reset();
            ClearPageTables();
            _host.Fill(t0, seed, index, 0);
            _host.Save();
        }
        else
        {
            _host.Restore();
            ClearPageTables();
        }
        _members[0] = pi;
        for (int i = 0; i < _followerCount; i++) _members[i + 1] = _followers[i];
        _tally.Start(t0, _members.AsSpan(0, _followerCount + 1));
        _now = t0;
        _latentUpTo = 0;
        _pending.Rescan.Reset();
        StartCounts();
        StartHolders();
        int replacementsDone = 0;
        var arrivals = Xoshiro256StarStar.ForStream(seed, (ulong)index * 4 + 2);
        double rate = _m.ArrivalRatePerHour;
        double nextArrival = rate > 0 ? t0 + Distributions.Exponential(ref arrivals, rate) : double.PositiveInfinity;
        int nextSite = 0;
        _pending.Clear();
        // The first batch of sites starts at t0 on that same host, so its schedule is the same for every policy too.
        bool firstBatch = _sites.PatternOf(0).Start == t0 && (swaps.Length == 0 || swaps[0] > t0);
        if (firstBatch && pi > 0)
        {
            _pending.Restore();
            nextSite = _firstBatchEnd;
        }
        double hours = _m.Hours;
        double scrubHours = _m.Config.Faults.ScrubHours;
        var departures = _host.Departures;
        while (true)
        {
            double tSite = nextSite < siteCount ? _sites.PatternOf(nextSite).Start : double.PositiveInfinity;
            double tPend = _pending.Any ? _pending.TopTime : double.PositiveInfinity;
            double tRep = replacementsDone < swaps.Length ? swaps[replacementsDone] : double.PositiveInfinity;
            bool workToCome = nextSite < siteCount || _pending.Any || replacementsDone < swaps.Length;
            double tArr = workToCome ? nextArrival : double.PositiveInfinity;
            // Once nothing left can cause an error, only departures of damaged VMs still change stranded capacity.
            double tDep = workToCome ? departures.NextEnd : _host.NextDamagedDeparture();
            double tWork = Math.Min(tSite, tRep);
            double lastStart = nextSite > 0 ? _sites.PatternOf(nextSite - 1).Start : t0;
            if (!_pending.Any && tWork < hours && tArr < tWork && tArr > lastStart + scrubHours && tWork - tArr > JumpHours)
            {
                // A long quiet gap (decided from policy-independent times only): let the VMs present now depart, then
                // refill to the stationary occupancy at the next site instead of simulating months of churn.
                while (departures.Count > 0 && departures.NextEnd < tWork)
                {
                    var top = departures.Pop();
                    ref var vm = ref _host.VmAt(top.Slot);
                    if (!vm.Alive || vm.Gen != top.Gen) continue;
                    _now = top.End;
                    EndVm(top.Slot);
                }
                _host.Fill(tWork, seed, index, 1 + swaps.Length + nextSite * (swaps.Length + 1) + replacementsDone);
                nextArrival = tWork + Distributions.Exponential(ref arrivals, rate);
                continue;
            }
            double t = Math.Min(Math.Min(Math.Min(tSite, tPend), Math.Min(tRep, tArr)), tDep);
            if (t >= hours) break;
            _now = t;
            if (t == tRep)
            {
                replacementsDone++;
                _migrations += _host.LiveVms();
                Reboot(t);
                // Refill only if something can still happen on this host (the VMs present matter only to later errors).
                if (nextSite < siteCount || replacementsDone < swaps.Length) _host.Fill(t, seed, index, replacementsDone);
                _pending.Clear();
            }
            else if (t == tDep)
            {
                var top = departures.Pop();
                ref var vm = ref _host.VmAt(top.Slot);
                if (vm.Alive && vm.Gen == top.Gen) EndVm(top.Slot);
            }
            else if (t == tArr)
            {
                _host.Arrive(ref arrivals, t);
                nextArrival = t + Distributions.Exponential(ref arrivals, rate);
            }
            else if (t == tPend)
            {
                // Handle UE events in order until something else is due (handling one changes no other time: a killed VM's
                // departure entry is skipped when it comes up); ties go to swaps, departures and arrivals, as above.
                double until = Math.Min(Math.Min(tRep, tDep), Math.Min(tArr, hours));
                Handle(_pending.Pop());
                while (!_panicked && _pending.Any && _pending.TopTime < until && _pending.TopTime <= tSite)
                {
                    _now = _pending.TopTime;
                    Handle(_pending.Pop());
                }
                if (_panicked)
                {
                    _panicked = false;
                    RebootAfterPanic(nextSite, index);
                }
            }
            else
            {
                // A pattern spanning many frames starts in all of them at once.
                do Schedule(nextSite++);
                while (nextSite < siteCount && _sites.PatternOf(nextSite).Start == t);
                _pending.Commit();
                if (pi == 0 && firstBatch && t == t0 && _firstBatchEnd != nextSite) { _pending.Save(); _firstBatchEnd = nextSite; }
            }
        }
        Finish(pi);
        return _followerCount;
    }

    /// <summary>How far the sites were scanned for permanent ones (<see cref="RebootAfterPanic"/>).</summary>
    private int _latentUpTo;

    /// <summary>The time of what the run handles now (stranded capacity changes are integrated from it).</summary>
    private double _now;

    /// <summary>The reboot after a DIMM swap at <paramref name="t"/>: every frame healthy, nothing stranded.</summary>
    private void Reboot(double t)
    {
        _host.Reset();
        ClearPageTables();
        _tally.Reboot(t);
    }

    /// <summary>
    /// The host panicked at <see cref="_now"/>: it reboots (the kernel forgets every recorded poison, the pool is healthy
    /// and refills from a stream of its own per panic; the reboot of <see cref="Reboot"/>, as after a DIMM swap) but the
    /// DIMM stays until the service swaps it (<see cref="DimmService"/>): every permanent pattern still present is found
    /// again by the first patrol scrub after the reboot. Transient and deposited poison does not survive it (the boot's
    /// memory initialisation rewrites every line).
    /// </summary>
    private void RebootAfterPanic(int nextSite, long index)
    {
        Reboot(_now);
        _pending.Clear();
        double rescan = _dimms.NextScrub(_now);
        // The permanent sites still present, listed since the run's first panic (Rescan) and extended by the sites started
        // since: a host that panics every scrub does not rescan every site each time.
        var latent = _pending.Rescan;
        for (int si = _latentUpTo; si < nextSite; si++)
        {
            ref readonly var p = ref _sites.PatternOf(si);
            if (p.Kind == PoisonKind.Permanent && p.End > _now) latent.Add(si);
        }
        _latentUpTo = Math.Max(_latentUpTo, nextSite);
        if (rescan < _m.Hours) latent.Start(rescan, _sites);
        bool again = latent.Any;
        if (again || nextSite < _sites.Count || _dimms.Swaps.Length > 0) _host.Fill(_now, _m.Config.Seed, index, -(int)_hostPanics);
    }

    /// <summary>At the site's start: when will this policy's host first see it, and how (consumed by the owner, or found by the scrub)?</summary>
    private void Schedule(int si)
    {
        ref readonly var p = ref _sites.PatternOf(si);
        double demand = double.PositiveInfinity;
        int frame = _sites.Frames[si];
        int owner = _host.Owner[frame];
        double touches = _touchesPerLineHour;
        if (owner >= 0 && touches > 0 && !Unreachable(frame))
        {
            ref var s = ref _sites.Items[si];
            double rate = p.Lines * touches * _host.HotOf(owner);
            if (double.IsNaN(s.DemandExp)) s.DemandExp = -Math.Log(s.DemandU);
            demand = p.Start + s.DemandExp / rate;
            if (demand >= p.End) demand = double.PositiveInfinity;
        }
        double t = Math.Min(demand, p.Scrub);
        if (t >= _m.Hours) return;
        _pending.Add(new Pending { Time = t, Site = si, Consumed = demand <= p.Scrub });
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
public readonly record struct FleetUeEvent(long Server, int Frame, long Offset, PoisonKind Kind, FleetFrameUse Use, bool Consumed, long BadPages, long Lines)
{
    /// <summary>Distinct 2 MiB regions of the frame with bad pages.</summary>
    public long Regions { get; init; } = 1;
}

using HugeFault.Mm;

namespace HugeFault.Fleet;

// Applying one UE event's effect (from the policy's EffectTable) to the host's frames, the VM that owns the frame and
// the run's tallies. Nothing here knows any policy: the effect says where the guest's data lives afterwards, what is
// lost, stranded and quarantined, and what the guest received; the frame's release comes with the effect too.
internal sealed partial class PolicyRun
{
    private readonly int[] _followers;
    private int _followerCount;
    /// <summary>The current event's effect under each follower (<see cref="Apply"/>).</summary>
    private readonly EventEffect[] _fx;
    /// <summary>Page-table bytes each policy has for a frame's mapping.</summary>
    private readonly PolicyFrameCounts<long> _framePt;
    private long[][] _vmPt = [];
    private int[] _vmPtDirty = new int[16];
    private int _vmPtDirtyCount;
    // The current event's class (and the class of the first error on its page, or −1), set by Lookup: each member's
    // effect is read from its table when needed (two loads; no array of effects to store, no write barriers).
    private int _eventHeldBy, _eventClass;

    /// <summary>Policies that followed the last run to its end.</summary>
    public ReadOnlySpan<int> Followers => _followers.AsSpan(0, _followerCount);

    private EffectTable Table(int p) => _tables[p];

    /// <summary>The leader's effect of an event of class <paramref name="classId"/> (on a page held after a first error of class <paramref name="heldBy"/>, or −1); the members' by <see cref="EffectOf"/>.</summary>
    private EventEffect Lookup(int heldBy, int classId)
    {
        _eventHeldBy = heldBy;
        _eventClass = classId;
        return EffectOf(_policy);
    }

    /// <summary>Policy <paramref name="p"/>'s effect of the current event.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private EventEffect EffectOf(int p) => _eventHeldBy < 0 ? _tables[p].First(_eventClass) : _tables[p].Further(_eventHeldBy, _eventClass);

    private void Drop(int i)
    {
        ReleaseHolder(i);
        LeaveMembers(_followers[i]);
        _followers[i] = _followers[--_followerCount];
        _fx[i] = _fx[_followerCount];
        _holdingCount = -1;
    }

    private bool Unreachable(int f) => _host.StateOf(f) == FrameState.Held && Table(_policy).First(_host.HeldBy[f]).Backing == FrameBacking.Unreachable;

    /// <summary>One UE event under the run's policies.</summary>
    private void Handle(Pending ev)
    {
        int pi = _policy;
        // the site's frame and pattern from their dense arrays; its draws (a cache line of their own) only where needed
        ref readonly var sp = ref _sites.PatternOf(ev.Site);
        int f = _sites.Frames[ev.Site];
        int owner = _host.Owner[f];
        bool consumed = ev.Consumed && owner >= 0;
        _ueEvents++;
        if (consumed) _consumedUes++;
        long pages = Math.Min(sp.Pages, PagesPerGiB - _host.Raw[f]);
        long regions = Math.Min(sp.Regions, pages);
        var st = _host.StateOf(f);
        if (pi == 0 && Observer is { } observe)
            observe(new FleetUeEvent(_out.Index, f, _sites.Items[ev.Site].Offset, sp.Kind, st switch
            {
                FrameState.Free => FleetFrameUse.FreeHuge,
                FrameState.Guest => FleetFrameUse.MappedHuge,
                FrameState.Kernel => FleetFrameUse.Kernel,
                FrameState.User4k => FleetFrameUse.User4k,
                _ => FleetFrameUse.AlreadyPoisoned,
            }, consumed, pages, sp.Lines) { Regions = regions });
        if (pages <= 0) return;
        switch (st)
        {
            case FrameState.Kernel:
            case FrameState.User4k:
            case FrameState.Broken:
                // 4 KiB memory: memory_failure() quarantines the pages, whatever the hugetlb policy (a page kept whole
                // is already stranded whole)
                _host.AddRaw(f, pages);
                AddStranded(pi, f, pages);
                for (int i = 0; i < _followerCount; i++) if (Holds(_followers[i])) AddStranded(_followers[i], f, pages);
                return;
            case FrameState.Free:
                // nobody dies: a follower must agree exactly (Apply drops the others)
                Apply(Lookup(-1, EventClass.FreeId(sp.Kind, _host.FreeCount > 1)), sp.Lines, owner >= 0 ? _sites.Items[ev.Site].UKill : 0, f, -1, pages, regions, ev.Time);
                return;
        }
        bool enlightened = _host.VmAt(owner).UEnlightened < _enlightenedFraction;
        int id = EventClass.MappedId(sp.Kind, consumed, _host.FreeCount > 0, enlightened);
        double uKill = _sites.Items[ev.Site].UKill;
        if (st == FrameState.Guest) Apply(Lookup(-1, id), sp.Lines, uKill, f, id, pages, regions, ev.Time);
        else Apply(Lookup(_host.HeldBy[f], id), sp.Lines, uKill, f, -1, pages, regions, ev.Time);
    }

    /// <summary>
    /// Applies effect <paramref name="e"/> of an event with <paramref name="pages"/> bad pages in <paramref name="regions"/>
    /// regions of frame <paramref name="f"/> (the site's pattern has <paramref name="lines"/> bad lines per frame and the site the guest-fate uniform <paramref name="uKill"/>; time <paramref name="t"/>). <paramref name="first"/>
    /// is the event's class when it is the first error on a healthy page of a VM (the frame may become held by it), else −1.
    /// </summary>
    private void Apply(EventEffect e, long lines, double uKill, int f, int first, long pages, long regions, double t)
    {
        int pi = _policy;
        int owner = _host.Owner[f];
        // Each follower's effect, read once (the loops below and Drop keep the array in step with the followers), unless
        // every follower's effect behaves as the leader's: then nobody is dropped or split off, and each counts e.
        bool agree = MembersAgree(e);
        var fx = _fx;
        if (!agree) for (int i = 0; i < _followerCount; i++) fx[i] = EffectOf(_followers[i]);
        // A host panic ends everything on the host; followers stay only if they panic too (and then share the reboot).
        bool panic = e.Panics(pages);
        if (!agree)
            for (int i = 0; i < _followerCount; i++)
                if (fx[i].Panics(pages) != panic) Drop(i--);
        if (panic)
        {
            PanicHost();
            return;
        }
        bool dies = owner >= 0 && Dies(e, uKill, owner, pages, regions, t);
        // A follower whose effect differs stays only if that changes nothing on the host: the VM dies of this event under
        // both and the page ends up the same (rewritten or not, held and released alike, or moved alike).
        if (!agree)
        {
            for (int i = 0; i < _followerCount; i++)
            {
                var q = fx[i];
                if (q.Trajectory == e.Trajectory) continue;
                if (dies && q.Repaired == e.Repaired && SameEnd(e, q, first) && Dies(q, uKill, owner, pages, regions, t)) continue;
                Drop(i--);
            }
            SplitHolders(e.Tally);
        }
        bool repaired = e.Repaired;
        if (!repaired) _host.AddRaw(f, pages);
        if (agree) CountAlike(e, f, lines, pages, regions);
        else
        {
            Account(pi, e, lines, pages, regions);
            if (!repaired) AddStranded(pi, f, Math.Max(0, e.Stranded.At(pages, regions)) >> 12);
            for (int i = 0; i < _followerCount; i++)
            {
                int q = _followers[i];
                var eq = fx[i];
                if (Holds(q))
                {
                    Account(q, eq, lines, pages, regions);
                    if (!repaired) AddStranded(q, f, Math.Max(0, eq.Stranded.At(pages, regions)) >> 12);
                }
                _tally.NoteExtra(q, eq.ExtraAt(pages, regions));
            }
        }
        if (repaired)
        {
            // the lines were rewritten: the page is whole again (the guest may have offlined what it was told about)
            _repairs++;
            if (dies) Kill(owner);
            return;
        }
        if (owner < 0)
        {
            _host.DissolveFree(f);
            return;
        }
        int ptFrame = f;
        bool moved = false;
        if (first >= 0)
        {
            switch (e.Backing)
            {
                case FrameBacking.OtherHugePage when _host.FreeCount > 0:
                    // the data now lives in another 1 GiB page of the pool; the old one is dissolved around its bad pages
                    ptFrame = _host.TakeFreeFrame();
                    _host.ReplaceInVm(owner, f, ptFrame);
                    _host.SetState(f, FrameState.Broken);
                    break;
                case FrameBacking.OutsidePool:
                    // the data now lives outside the pool (page tables go with the VM); the old page is dissolved
                    _host.RemoveFromVm(owner, f);
                    _host.SetState(f, FrameState.Broken);
                    moved = true;
                    break;
                default:
                    // still the VM's (mapped around the bad pages, or not reachable at all)
                    _host.SetHeld(f, first);
                    break;
            }
        }
        int mappings = _mappings;
        AddPageTables(pi, ptFrame, owner, moved, e.PageTables.At(pages, regions) * mappings);
        for (int i = 0; i < _followerCount; i++) AddPageTables(_followers[i], ptFrame, owner, moved, (agree ? e : fx[i]).PageTables.At(pages, regions) * mappings);
        if (dies) Kill(owner);
    }

    /// <summary>A policy's own tallies of the event: guest memory lost, good data lost, fallbacks (and, for the leader, extra memory).</summary>
    private void Account(int p, EventEffect e, long lines, long pages, long regions)
    {
        if (e.Counts)
        {
            long lost = Math.Clamp(e.GuestLost.At(pages, regions), 0, FleetPolicies.GiB);
            _guestLost[p] += lost;
            _goodDataLost[p] += Math.Max(0, lost - lines * 64);
            if (e.Fallback) _fallbacks[p]++;
        }
        if (p == _policy) _tally.NoteExtra(p, e.ExtraAt(pages, regions));
    }

    /// <summary>
    /// Would two effects leave the page in the same state once the VM is gone? Dead (moved away, or held and then kept or
    /// dissolved: which of the two only changes stranded capacity, tallied per policy) or back in the pool.
    /// </summary>
    private static bool SameEnd(EventEffect a, EventEffect b, int first) => first < 0 || DeadOnceFree(a) == DeadOnceFree(b);

    private static bool DeadOnceFree(EventEffect x) => x.Backing is not (FrameBacking.SamePage or FrameBacking.Unreachable) || x.Release != FrameRelease.BackToPool;

    private void AddStranded(int p, int f, long pages)
    {
        if (pages != 0) _tally.SetStranded(p, f, _tally.StrandedIn(p, f) + pages, _now);
    }

    /// <summary>The guest's answer to what the event delivered (<see cref="GuestFate"/>).</summary>
    private bool Dies(EventEffect e, double uKill, int owner, long pages, long regions, double t)
    {
        ref var vm = ref _host.VmAt(owner);
        return _fate.Dies(e.GuestDied.At(pages, regions) > 0, e.Mces.At(pages, regions),
            Math.Clamp(e.UnknownLost.At(pages, regions), 0, FleetPolicies.GiB), _host.HotOf(owner), vm.End - t, uKill);
    }

    /// <summary>
    /// The host panicked handling the event: every VM on it dies, and it reboots (<see cref="PolicyRun.Run"/> does the
    /// reboot once the event is over, as after a DIMM swap: every page healthy, pending events dropped, the pool refilled).
    /// </summary>
    private void PanicHost()
    {
        _hostPanics++;
        _vmsKilled += _host.LiveVms();
        _panicked = true;
    }

    private void Kill(int slot)
    {
        if (slot < 0 || !_host.VmAt(slot).Alive) return;
        _vmsKilled++;
        EndVm(slot);
    }

    /// <summary>The VM exits: its frames are released, and the page tables of its memory outside the pool go with it.</summary>
    private void EndVm(int slot)
    {
        _host.EndVm(slot, _release, _framePt);
        ReleaseVmPageTables(slot);
    }

    /// <summary>A frame of an exiting VM (healthy ones without page tables went back to the pool in <see cref="HostFrames.EndVm"/>): healthy ones go back to the pool, a held one becomes what its first error's effect says.</summary>
    private void ReleaseFrame(int f)
    {
        switch (_host.StateOf(f))
        {
            case FrameState.Guest:
                _host.ReturnToPool(f);
                break;
            case FrameState.Held:
                int by = _host.HeldBy[f];
                Released(_policy, f, Table(_policy).First(by));
                for (int i = 0; i < _followerCount; i++) if (Holds(_followers[i])) Released(_followers[i], f, Table(_followers[i]).First(by));
                if (Table(_policy).First(by).Release == FrameRelease.BackToPool)
                {
                    _host.AddRaw(f, -_host.Raw[f]);
                    _host.ReturnToPool(f);
                }
                else _host.SetState(f, FrameState.Broken);
                break;
        }
        if (!_framePt.Touched(f)) return;
        _tally.AddPageTables(_policy, -_framePt.Get(_policy, f));
        _framePt.Set(_policy, f, 0);
        for (int i = 0; i < _followerCount; i++)
        {
            int q = _followers[i];
            _tally.AddPageTables(q, -_framePt.Get(q, f));
            _framePt.Set(q, f, 0);
        }
    }

    /// <summary>
    /// What policy <paramref name="p"/> strands of a held page once its VM is gone, by the effect of the page's first error
    /// under it (a policy that moved the data away instead already left the page dissolved, its stranded pages counted).
    /// </summary>
    private void Released(int p, int f, EventEffect first)
    {
        if (first.Backing is not (FrameBacking.SamePage or FrameBacking.Unreachable)) return;
        _tally.SetStranded(p, f, first.Release switch { FrameRelease.BackToPool => 0, FrameRelease.Dissolved => _host.Raw[f], _ => PagesPerGiB }, _now);
    }

    private void AddPageTables(int p, int frame, int owner, bool withVm, long bytes)
    {
        if (bytes == 0) return;
        _tally.AddPageTables(p, bytes);
        if (withVm)
        {
            if (_vmPt.Length <= p || _vmPt[p].Length <= owner) GrowVmPt(owner);
            if (_vmPt[p][owner] == 0)
            {
                if (_vmPtDirtyCount == _vmPtDirty.Length) Array.Resize(ref _vmPtDirty, _vmPtDirty.Length * 2);
                _vmPtDirty[_vmPtDirtyCount++] = owner;
            }
            _vmPt[p][owner] += bytes;
            return;
        }
        _framePt.Set(p, frame, _framePt.Get(p, frame) + bytes);
    }

    private void GrowVmPt(int slot)
    {
        int n = Math.Max(64, (slot + 1) * 2);
        if (_vmPt.Length < _m.Policies.Length) Array.Resize(ref _vmPt, _m.Policies.Length);
        for (int p = 0; p < _vmPt.Length; p++)
        {
            var a = _vmPt[p] ?? [];
            if (a.Length < n) Array.Resize(ref a, n);
            _vmPt[p] = a;
        }
    }

    private void ReleaseVmPageTables(int slot)
    {
        if (_vmPtDirtyCount == 0) return;
        for (int p = 0; p < _vmPt.Length; p++)
            if (_vmPt[p].Length > slot && _vmPt[p][slot] != 0) { _tally.AddPageTables(p, -_vmPt[p][slot]); _vmPt[p][slot] = 0; }
    }

    private void ClearPageTables()
    {
        _framePt.Clear();
        for (int i = 0; i < _vmPtDirtyCount; i++)
            foreach (var a in _vmPt) if (a.Length > _vmPtDirty[i]) a[_vmPtDirty[i]] = 0;
        _vmPtDirtyCount = 0;
    }

    // The run's counts (written into the outcome at the end); those that may differ between the policies of a run are per policy.
    private long _ueEvents, _consumedUes, _vmsKilled, _repairs, _migrations, _hostPanics;
    /// <summary>The event just handled panicked the host (the run reboots it).</summary>
    private bool _panicked;
    private long[] _guestLost = [], _goodDataLost = [], _fallbacks = [];

    private void StartCounts()
    {
        _ueEvents = _consumedUes = _vmsKilled = _repairs = _migrations = _hostPanics = 0;
        _panicked = false;
        int n = _m.Policies.Length;
        if (_guestLost.Length != n) { _guestLost = new long[n]; _goodDataLost = new long[n]; _fallbacks = new long[n]; }
        Array.Clear(_guestLost);
        Array.Clear(_goodDataLost);
        Array.Clear(_fallbacks);
    }

    private void Finish(int pi)
    {
        var o = _out;
        o.Policy[pi, (int)PolicyMetric.UeEvents] = _ueEvents;
        o.Policy[pi, (int)PolicyMetric.ConsumedUes] = _consumedUes;
        o.Policy[pi, (int)PolicyMetric.VmsKilled] = _vmsKilled;
        o.Policy[pi, (int)PolicyMetric.GuestLostBytes] = _guestLost[pi];
        o.Policy[pi, (int)PolicyMetric.GoodDataLostBytes] = _goodDataLost[pi];
        o.Policy[pi, (int)PolicyMetric.Repairs] = _repairs;
        o.Policy[pi, (int)PolicyMetric.Fallbacks] = _fallbacks[pi];
        o.Policy[pi, (int)PolicyMetric.LiveMigrations] = _migrations;
        o.Policy[pi, (int)PolicyMetric.HostPanics] = _hostPanics;
        o.Policy[pi, (int)PolicyMetric.HugePagesLost] = _host.DamagedPool;
        o.Policy[pi, (int)PolicyMetric.ServersWithUeEvent] = _ueEvents > 0 ? 1 : 0;
        o.Policy[pi, (int)PolicyMetric.PageTablePeakBytes] = _tally.PtPeak[pi];
        o.Policy[pi, (int)PolicyMetric.ExtraPeakBytes] = _tally.ExtraPeak[pi];
        _tally.Finish(pi);
        // Followers left the host in the same states: the same metrics but their own stranded capacity, guest memory,
        // fallbacks, page tables and extra memory (those of the policy holding their tallies, SharedTallies.cs).
        for (int i = 0; i < _followerCount; i++) if (Holds(_followers[i])) _tally.Finish(_followers[i]);
        for (int i = 0; i < _followerCount; i++)
        {
            int q = _followers[i], h = _holder[q];
            for (int k = 0; k < ServerOutcome.PolicyMetrics; k++)
                if (k is not ((int)PolicyMetric.StrandedPageHours or (int)PolicyMetric.StrandedPagesEnd)) o.Policy[q, k] = o.Policy[pi, k];
            if (h != q) _tally.CopyFinished(h, q);
            o.Policy[q, (int)PolicyMetric.PageTablePeakBytes] = _tally.PtPeak[q];
            o.Policy[q, (int)PolicyMetric.ExtraPeakBytes] = _tally.ExtraPeak[q];
            o.Policy[q, (int)PolicyMetric.GuestLostBytes] = _guestLost[h];
            o.Policy[q, (int)PolicyMetric.GoodDataLostBytes] = _goodDataLost[h];
            o.Policy[q, (int)PolicyMetric.Fallbacks] = _fallbacks[h];
        }
    }
}

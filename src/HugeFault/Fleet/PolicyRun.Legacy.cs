namespace HugeFault.Fleet;

// Temporary: the hand-written policy table of the old simulator, moved here unchanged while the simulator is split.
internal sealed partial class PolicyRun
{
    private const int Whole = 0, Part = 1;

    internal static bool IsSplitClass(FleetPolicy p) => p is FleetPolicy.Hgm or FleetPolicy.HgmFullSplit or FleetPolicy.VmaConvert or FleetPolicy.KeepMapped;

    private bool Unreachable(int f) => _host.StateOf(f) == FrameState.Held && _host.HeldBy[f] == Whole;

    private bool Damaged(int f)
    {
        if (_host.StateOf(f) != FrameState.Guest) return true;
        foreach (var a in _framePt) if (a[f] != 0) return true;
        return false;
    }

    private void ReleaseFrame(int f)
    {
        switch (_host.StateOf(f))
        {
            case FrameState.Guest:
                _host.ReturnToPool(f);
                break;
            case FrameState.Held when _host.HeldBy[f] == Whole:
                _host.Stranded -= PagesPerGiB - _host.Raw[f];
                _host.State[f] = (byte)FrameState.Broken;
                break;
            case FrameState.Held:
                if (_host.Raw[f] > 0) _host.State[f] = (byte)FrameState.Broken;
                else _host.ReturnToPool(f);
                break;
        }
        for (int p = 0; p < _framePt.Length; p++)
        {
            _tally.PtNow[p] -= _framePt[p][f];
            _framePt[p][f] = 0;
        }
    }

    private void Finish(int pi)
    {
        var o = _out;
        var policy = _m.Policies[pi];
        o.Policy[pi, (int)PolicyMetric.PageTablePeakBytes] = _tally.PtPeak[pi];
        o.Policy[pi, (int)PolicyMetric.ExtraPeakBytes] = _tally.ExtraPeak[pi];
        long lost = 0;
        for (int f = _m.PoolStart; f < _m.Frames; f++)
            if (_host.StateOf(f) is FrameState.Broken || (_host.StateOf(f) == FrameState.Held && (_host.HeldBy[f] == Whole || _host.Raw[f] > 0)))
                lost++;
        o.Policy[pi, (int)PolicyMetric.HugePagesLost] = lost;
        if (o.Policy[pi, (int)PolicyMetric.UeEvents] > 0) o.Policy[pi, (int)PolicyMetric.ServersWithUeEvent] = 1;
        if (IsSplitClass(policy))
            for (int q = 0; q < _m.Policies.Length; q++)
                if (q != pi && IsSplitClass(_m.Policies[q])) SplitPt[q] = _tally.PtPeak[q];
    }

    /// <summary>Page-table peaks of the other split-class policies from the class run.</summary>
    internal readonly long[] SplitPt = new long[16];

    private void AddRaw(int f, long pages, bool stranded)
    {
        _host.Raw[f] += (int)pages;
        if (stranded) _host.Stranded += pages;
    }

    private void AddClassPt(int f, long hgm, long full)
    {
        for (int q = 0; q < _m.Policies.Length; q++)
        {
            var p = _m.Policies[q];
            if (!IsSplitClass(p)) continue;
            long b = p == FleetPolicy.Hgm ? hgm : p is FleetPolicy.HgmFullSplit or FleetPolicy.VmaConvert ? full : 0;
            AddPt(q, f, b);
        }
    }

    private void Handle(Pending ev)
    {
        int pi = _policy;
        var policy = _m.Policies[pi];
        ref readonly var s = ref _sites.Items[ev.Site];
        var o = _out;
        var g = _m.Config.Guest;
        int f = s.Frame;
        int owner = _host.Owner[f];
        bool consumed = ev.Consumed && owner >= 0;
        o.Policy[pi, (int)PolicyMetric.UeEvents]++;
        if (consumed) o.Policy[pi, (int)PolicyMetric.ConsumedUes]++;
        long badPages = Math.Min(s.Pages, PagesPerGiB - _host.Raw[f]);
        var st = _host.StateOf(f);
        if (pi == 0 && Observer is { } observe)
            observe(new FleetUeEvent(_out.Index, f, s.Offset, s.Kind, st switch
            {
                FrameState.Free => FleetFrameUse.FreeHuge,
                FrameState.Guest => FleetFrameUse.MappedHuge,
                FrameState.Kernel => FleetFrameUse.Kernel,
                FrameState.User4k => FleetFrameUse.User4k,
                _ => FleetFrameUse.AlreadyPoisoned,
            }, consumed, badPages, s.Lines));
        long badBytes = s.Lines * 64;
        int mappings = _m.Config.Workload.MappingsPerPage;
        switch (st)
        {
            case FrameState.Kernel:
            case FrameState.User4k:
            case FrameState.Broken:
                AddRaw(f, badPages, stranded: true);
                return;
            case FrameState.Held when _host.HeldBy[f] == Whole:
                AddRaw(f, badPages, stranded: false);
                if (consumed && s.UKill < g.MainlineKillOnConsumed) Kill(owner);
                return;
            case FrameState.Held:
                if (policy == FleetPolicy.Repair && s.Kind != Mm.PoisonKind.Permanent && _host.VmAt(owner).UEnlightened < g.EnlightenedFraction)
                {
                    o.Policy[pi, (int)PolicyMetric.Repairs]++;
                    return;
                }
                AddRaw(f, badPages, stranded: true);
                o.Policy[pi, (int)PolicyMetric.GuestLostBytes] += badPages * FleetPolicies.PageBytes;
                o.Policy[pi, (int)PolicyMetric.GoodDataLostBytes] += Math.Max(0, badPages * FleetPolicies.PageBytes - badBytes);
                if (IsSplitClass(policy)) AddClassPt(f, FleetPolicies.PageBytes * mappings, 0);
                if (s.UKill < g.GuestKernelFraction) Kill(owner);
                return;
        }
        var use = owner >= 0 ? FrameUse.MappedHuge : FrameUse.FreeHuge;
        bool accepted = owner < 0 || _host.VmAt(owner).UEnlightened < g.EnlightenedFraction;
        var fx = FleetPolicies.Resolve(policy, use, s.Kind, badPages, accepted, _host.FreeCount > 0, _m.RepairFallback, _m.CopyFallback);
        if (fx.UsedFallback) o.Policy[pi, (int)PolicyMetric.Fallbacks]++;
        _tally.NoteExtra(pi, fx.ExtraPeakBytes);
        switch (fx.Fate)
        {
            case FrameFate.Repaired:
                o.Policy[pi, (int)PolicyMetric.Repairs]++;
                return;
            case FrameFate.Dissolve:
                _host.MarkNotFree(f);
                _host.State[f] = (byte)FrameState.Broken;
                AddRaw(f, badPages, stranded: true);
                return;
            case FrameFate.PoisonWhole:
                _host.State[f] = (byte)FrameState.Held;
                _host.HeldBy[f] = Whole;
                _host.Raw[f] = (int)badPages;
                _host.Stranded += PagesPerGiB;
                o.Policy[pi, (int)PolicyMetric.GuestLostBytes] += FleetPolicies.GiB;
                o.Policy[pi, (int)PolicyMetric.GoodDataLostBytes] += FleetPolicies.GiB - badBytes;
                if (s.UKill < (consumed ? g.MainlineKillOnConsumed : g.MainlineKillOnScrubbed)) Kill(owner);
                return;
            case FrameFate.PoisonSubpages:
                _host.State[f] = (byte)FrameState.Held;
                _host.HeldBy[f] = Part;
                break;
            case FrameFate.CopiedAway:
            {
                int nf = _host.TakeFreeFrame();
                _host.ReplaceInVm(owner, f, nf);
                _host.State[f] = (byte)FrameState.Broken;
                break;
            }
            case FrameFate.MovedTo4K:
                _host.RemoveFromVm(owner, f);
                _host.State[f] = (byte)FrameState.Broken;
                _tally.AddPageTables(pi, fx.PageTableBytesPerMapping * mappings);
                break;
        }
        AddRaw(f, badPages, stranded: true);
        o.Policy[pi, (int)PolicyMetric.GuestLostBytes] += fx.InaccessibleBytes;
        o.Policy[pi, (int)PolicyMetric.GoodDataLostBytes] += Math.Max(0, fx.InaccessibleBytes - badBytes);
        if (fx.Fate == FrameFate.PoisonSubpages)
        {
            if (IsSplitClass(policy))
                AddClassPt(f, FleetPolicies.Resolve(FleetPolicy.Hgm, use, s.Kind, badPages, accepted, true).PageTableBytesPerMapping * mappings,
                    FleetPolicies.Resolve(FleetPolicy.HgmFullSplit, use, s.Kind, badPages, accepted, true).PageTableBytesPerMapping * mappings);
            else AddPt(pi, f, fx.PageTableBytesPerMapping * mappings);
        }
        if (s.UKill < g.GuestKernelFraction) Kill(owner);
    }
}

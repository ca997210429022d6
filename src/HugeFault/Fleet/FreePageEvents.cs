namespace HugeFault.Fleet;

// UE events on free pages of the pool, the commonest events of the fleet: a pattern spanning many frames (a column,
// bank or lane failing in every gigabyte of a rank) is found by one patrol scrub in all its frames at once, and the
// frames no VM holds then are dissolved around their bad pages. When every member of the run agrees on the effect
// (EffectAgreement.cs) and it neither repairs the lines nor panics the host, such an event is what Apply's agreed path
// does for a free page, without its VM and follower bookkeeping; the events of the same scrub that follow it on free
// pages of the same class are handled in the same loop, the run's tally holders listed once. Results are those of
// handling each event through Apply: the same order, the same integer tallies, and stranded capacity integrated at the
// same time (HostTally.SetStranded integrates nothing more when called again at the same time).
internal sealed partial class PolicyRun
{
    /// <summary>The run's members that keep their own tallies now (the leader first), for <see cref="DissolveFree"/>.</summary>
    private int[] _holding = [];
    /// <summary>How many of <see cref="_holding"/> are listed, or −1 when the holders changed since (SharedTallies.cs, Drop).</summary>
    private int _holdingCount = -1;

    /// <summary>Does an event with effect <paramref name="e"/> on a free page take <see cref="DissolveFree"/> (every member agreeing, nothing repaired, no panic)?</summary>
    private bool DissolvesAlike(EventEffect e, long pages) => !e.Repaired && !e.Panics(pages) && MembersAgree(e);

    /// <summary>
    /// The event on free frame <paramref name="f"/> at <paramref name="t"/> (effect <paramref name="e"/>, taken by every
    /// member), then each following event of the same time on a free page of the same class.
    /// </summary>
    private void DissolveFree(EventEffect e, double t, int f, long lines, long pages, long regions)
    {
        if (_holdingCount < 0)
        {
            // listed again only after the holders changed (most such events come one at a time, at a dead VM's read)
            if (_holding.Length < _followerCount + 1) _holding = new int[_m.Policies.Length];
            _holdingCount = 0;
            _holding[_holdingCount++] = _policy;
            for (int i = 0; i < _followerCount; i++) if (Holds(_followers[i])) _holding[_holdingCount++] = _followers[i];
        }
        var holding = _holding.AsSpan(0, _holdingCount);
        long extra = e.ExtraAt(pages, regions);
        Dissolve(e, holding, f, lines, pages, regions);
        int classId = _eventClass;
        int next;
        while ((next = _pending.SiteAt(t)) >= 0)
        {
            int g = _sites.Frames[next];
            if (_host.StateOf(g) != FrameState.Free || _host.Owner[g] >= 0) break;
            ref readonly var sp = ref _sites.PatternOf(next);
            if (EventClass.FreeId(sp.Kind, _host.FreeCount > 1) != classId) break;
            long n = Math.Min(sp.Pages, PagesPerGiB - _host.Raw[g]);
            if (n <= 0 || e.Panics(n)) break;
            long r = Math.Min(sp.Regions, n);
            _pending.Take();
            _ueEvents++;
            if (_policy == 0 && Observer is { } observe)
                observe(new FleetUeEvent(_out.Index, g, _sites.Items[next].Offset, sp.Kind, FleetFrameUse.FreeHuge, false, n, sp.Lines) { Regions = r });
            extra = Math.Max(extra, e.ExtraAt(n, r));
            Dissolve(e, holding, g, sp.Lines, n, r);
        }
        // every member's extra memory is the largest of the events' (a running peak: the order does not matter)
        _tally.NoteExtra(_policy, extra);
        for (int i = 0; i < _followerCount; i++) _tally.NoteExtra(_followers[i], extra);
    }

    /// <summary>Free frame <paramref name="f"/> is dissolved around its <paramref name="pages"/> bad pages under every member.</summary>
    private void Dissolve(EventEffect e, ReadOnlySpan<int> holding, int f, long lines, long pages, long regions)
    {
        _host.AddRaw(f, pages);
        if (e.Counts) foreach (int p in holding) Account(p, e, lines, pages, regions);
        _tally.AddStranded(holding, f, Math.Max(0, e.Stranded.At(pages, regions)) >> 12, _now);
        _host.MarkNotFree(f);
        _host.SetState(f, FrameState.Broken);
    }
}

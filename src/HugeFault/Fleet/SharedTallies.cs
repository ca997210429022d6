namespace HugeFault.Fleet;

// Policies of one run whose effects agreed on every event so far in what decides their own tallies (stranded capacity,
// guest memory lost, fallbacks: EventEffect.Tally) have equal tallies, so only one of them, the holder, keeps them; the
// others point at it and cost nothing per event. At the first event where a policy's effect differs from its holder's,
// it takes a copy of the holder's tallies (before the event is counted) and keeps its own from then on. Page-table and
// extra memory are kept per policy (they differ most often and cost nothing when zero).
internal sealed partial class PolicyRun
{
    /// <summary>Which policy keeps policy p's stranded, guest-memory and fallback tallies in this run (p itself or another member).</summary>
    private int[] _holder = [];

    /// <summary>Every member of the run starts with nothing tallied, so all share the leader's tallies.</summary>
    private void StartHolders()
    {
        int n = _m.Policies.Length;
        if (_holder.Length != n) { _holder = new int[n]; _splitFrom = new int[n]; }
        _splitFrom.AsSpan().Fill(-1);
        for (int i = 0; i < _followerCount; i++) _holder[_followers[i]] = _policy;
        _holder[_policy] = _policy;
        _holdingCount = -1;
    }

    /// <summary>The run's members that keep their own tallies now (the leader first), listed by <see cref="Holding"/>.</summary>
    private int[] _holding = [];
    /// <summary>How many of <see cref="_holding"/> are listed, or −1 when the holders changed since.</summary>
    private int _holdingCount = -1;

    /// <summary>The members that keep their own tallies, listed again only after the holders changed.</summary>
    private ReadOnlySpan<int> Holding()
    {
        if (_holdingCount < 0)
        {
            if (_holding.Length < _followerCount + 1) _holding = new int[_m.Policies.Length];
            _holdingCount = 0;
            _holding[_holdingCount++] = _policy;
            for (int i = 0; i < _followerCount; i++) if (Holds(_followers[i])) _holding[_holdingCount++] = _followers[i];
        }
        return _holding.AsSpan(0, _holdingCount);
    }

    /// <summary>
    /// Counts effect <paramref name="e"/>, which every member has (<see cref="MembersAgree"/>), of an event on frame
    /// <paramref name="f"/>: its guest memory, fallbacks and stranded pages once per holder, its extra memory for every member.
    /// </summary>
    private void CountAlike(EventEffect e, int f, long lines, long pages, long regions)
    {
        var holding = Holding();
        if (e.Counts) foreach (int p in holding) Account(p, e, lines, pages, regions);
        long extra = e.ExtraAt(pages, regions);
        _tally.NoteExtra(_policy, extra);
        for (int i = 0; i < _followerCount; i++) _tally.NoteExtra(_followers[i], extra);
        if (!e.Repaired) _tally.AddStranded(holding, f, Math.Max(0, e.Stranded.At(pages, regions)) >> 12, _now);
    }

    /// <summary>Does policy <paramref name="p"/> keep its own tallies?</summary>
    private bool Holds(int p) => _holder[p] == p;

    /// <summary>
    /// Before the event's effects are counted (the followers' effects in <see cref="_fx"/>): every member whose effect differs (in its tallies) from its holder's takes
    /// a copy of the holder's tallies. Members that split off the same holder with equal effects share the first one's copy.
    /// <paramref name="leaderTally"/> is the leader's <see cref="EventEffect.Tally"/> (the holder of most members).
    /// </summary>
    private void SplitHolders(int leaderTally)
    {
        bool split = false;
        for (int i = 0; i < _followerCount; i++)
        {
            int q = _followers[i], h = _holder[q];
            if (h == q) continue;
            var e = _fx[i];
            if (e.Tally == (h == _policy ? leaderTally : EffectOf(h).Tally)) continue;
            split = true;
            // an earlier member that left the same holder this event with an equal effect holds a copy already
            int shared = -1;
            for (int j = 0; j < i && shared < 0; j++)
            {
                int r = _followers[j];
                if (_holder[r] == r && _splitFrom[j] == h && _fx[j].Tally == e.Tally) shared = r;
            }
            if (shared >= 0) { _holder[q] = shared; continue; }
            TakeTallies(q, h);
            _splitFrom[i] = h;
        }
        if (split) for (int i = 0; i < _followerCount; i++) _splitFrom[i] = -1;
    }

    /// <summary>For each follower slot, the holder it left in the current event (−1 if none).</summary>
    private int[] _splitFrom = [];

    /// <summary>Follower slot <paramref name="i"/> leaves the run: those it held tallies for take a copy first (the first of them holds it for the rest).</summary>
    private void ReleaseHolder(int i)
    {
        int d = _followers[i];
        int heir = -1;
        for (int j = 0; j < _followerCount; j++)
        {
            int q = _followers[j];
            if (q == d || _holder[q] != d) continue;
            if (heir < 0)
            {
                TakeTallies(q, d);
                heir = q;
            }
            else _holder[q] = heir;
        }
    }

    /// <summary>Policy <paramref name="q"/> keeps its own tallies from now on, starting from a copy of <paramref name="from"/>'s.</summary>
    private void TakeTallies(int q, int from)
    {
        _tally.CopyStranded(from, q);
        _guestLost[q] = _guestLost[from];
        _goodDataLost[q] = _goodDataLost[from];
        _fallbacks[q] = _fallbacks[from];
        _holder[q] = q;
        _holdingCount = -1;
    }
}

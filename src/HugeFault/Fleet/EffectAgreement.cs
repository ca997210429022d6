namespace HugeFault.Fleet;

// Most UE events of a run have the same effect under every member: an error on a free page of the pool is dissolved
// alike by every design, and the wide patterns that cost the most (a column, bank or lane failing in every gigabyte of
// the host) are mostly such events. For those the members need no effect of their own read, compared, dropped or split:
// Apply takes its fast path. Whether an event class agrees for a set of members is fixed (a table's effects never change
// once read), so it is worked out once per (class, leader, members) and remembered.
internal sealed partial class PolicyRun
{
    /// <summary>The members of the current run (leader and followers) as a bit set; 0 when there are too many policies for one.</summary>
    private ulong _memberMask;

    /// <summary>Per event class (first errors, then later errors per class of the first): the members and leader it was last worked out for, and the answer.</summary>
    private readonly ulong[] _agreeMembers = new ulong[EventClass.Count * (EventClass.Count + 1)];
    private readonly int[] _agreeLeader = new int[EventClass.Count * (EventClass.Count + 1)];
    private readonly bool[] _agree = new bool[EventClass.Count * (EventClass.Count + 1)];

    private void StartMembers()
    {
        _memberMask = 0;
        if (_m.Policies.Length > 64) return;
        _memberMask = 1UL << _policy;
        for (int i = 0; i < _followerCount; i++) _memberMask |= 1UL << _followers[i];
    }

    private void LeaveMembers(int q)
    {
        if (_memberMask != 0) _memberMask &= ~(1UL << q);
    }

    /// <summary>Does every follower's effect of the current event behave exactly as the leader's <paramref name="e"/> (<see cref="EventEffect.Behaviour"/>)?</summary>
    private bool MembersAgree(EventEffect e)
    {
        if (_followerCount == 0) return true;
        if (_memberMask == 0) return false;
        int slot = _eventHeldBy < 0 ? _eventClass : EventClass.Count * (1 + _eventHeldBy) + _eventClass;
        if (_agreeMembers[slot] == _memberMask && _agreeLeader[slot] == _policy) return _agree[slot];
        bool agree = true;
        for (int i = 0; i < _followerCount && agree; i++) agree = EffectOf(_followers[i]).Behaviour == e.Behaviour;
        _agreeMembers[slot] = _memberMask;
        _agreeLeader[slot] = _policy;
        _agree[slot] = agree;
        return agree;
    }
}

namespace HugeFault.Fleet;

// The host at the first site, for every policy: each policy run starts from a copy of it (HostFrames.Save at the first
// run, Restore at the others), restoring only the frames changed since unless a reboot changed them all.
internal sealed partial class HostFrames
{
    private readonly byte[] _snapState;
    private readonly int[] _snapOwner, _snapNext;
    private readonly ulong[] _snapFree;
    private Vm[] _snapVms = [];
    private int _snapFreeCount, _snapVmCount, _snapFirstFree;

    public void Save()
    {
        State.CopyTo(_snapState, 0);
        Owner.CopyTo(_snapOwner, 0);
        _next.CopyTo(_snapNext, 0);
        _freeBits.CopyTo(_snapFree, 0);
        if (_snapVms.Length < VmCount) _snapVms = new Vm[_vms.Length];
        Array.Copy(_vms, _snapVms, VmCount);
        Departures.Save();
        _snapFreeCount = FreeCount;
        _snapVmCount = VmCount;
        _snapFirstFree = _firstFreeWord;
        ClearDirty();
    }

    private void ClearDirty()
    {
        for (int i = 0; i < _dirtyCount; i++) _isDirty[_dirty[i]] = false;
        _dirtyCount = 0;
        _allDirty = false;
    }

    /// <summary>Back to the host of <see cref="Save"/> (the frames changed since, one by one, unless a reboot changed them all).</summary>
    public void Restore()
    {
        if (_allDirty)
        {
            _snapState.CopyTo(State, 0);
            _snapOwner.CopyTo(Owner, 0);
            _snapNext.CopyTo(_next, 0);
            Array.Clear(Raw);
        }
        else
        {
            for (int i = 0; i < _dirtyCount; i++)
            {
                int f = _dirty[i];
                State[f] = _snapState[f];
                Owner[f] = _snapOwner[f];
                _next[f] = _snapNext[f];
                Raw[f] = 0;
            }
        }
        ClearDirty();
        DamagedPool = 0;
        _snapFree.CopyTo(_freeBits, 0);
        if (_vms.Length < _snapVmCount) Array.Resize(ref _vms, _snapVms.Length);
        Array.Copy(_snapVms, _vms, _snapVmCount);
        Departures.Restore();
        FreeCount = _snapFreeCount;
        VmCount = _snapVmCount;
        _firstFreeWord = _snapFirstFree;
        _freeSlotCount = 0;
    }
}

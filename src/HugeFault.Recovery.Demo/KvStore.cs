using HugeFault.Recovery.Kernel;

namespace HugeFault.Recovery.Demo;

/// <summary>
/// An in-memory key-value store whose values live in a hugetlb memfd: key k is the 512-byte slot at k·512,
/// holding its version and 63 words derived from (key, version). Every access goes through
/// <see cref="RecoveryAgent.CopyChecked"/>, so a lost 4 KiB page turns into "key lost" instead of a
/// SIGBUS, and an access that meets the page under recovery waits and completes.
/// </summary>
internal sealed unsafe class KvStore(RecoveryAgent agent, byte* baseAddr, long size)
{
    public const int Slot = 512, Words = Slot / 8;
    public readonly byte* Base = baseAddr;
    public readonly long Size = size;
    public readonly int Keys = (int)(size / Slot);
    private readonly uint[] _versions = new uint[size / Slot];
    private readonly bool[] _lost = new bool[size / Slot];
    private long _corrupt;

    public long Corruptions => Interlocked.Read(ref _corrupt);

    public static ulong Word(int key, uint version, int w) =>
        ((ulong)key * 0x9E3779B97F4A7C15UL) ^ ((ulong)version << 40) ^ ((ulong)(w + 1) * 0xD6E8FEB86659FD93UL);

    /// <summary>Writes version 1 of every key with ordinary stores (before Protect).</summary>
    public void Fill()
    {
        for (int k = 0; k < Keys; k++)
        {
            ulong* s = (ulong*)(Base + (long)k * Slot);
            s[0] = 1;
            for (int w = 1; w < Words; w++) s[w] = Word(k, 1, w);
            _versions[k] = 1;
        }
    }

    private static void Build(ulong* buf, int key, uint version)
    {
        buf[0] = version;
        for (int w = 1; w < Words; w++) buf[w] = Word(key, version, w);
    }

    /// <summary>Whether the slot in buf holds exactly (key, version).</summary>
    private static bool Holds(ulong* buf, int key, uint version)
    {
        if (buf[0] != version) return false;
        for (int w = 1; w < Words; w++) if (buf[w] != Word(key, version, w)) return false;
        return true;
    }

    /// <summary>Reads a key; false if it was lost. A value that differs from what was written counts as corruption.</summary>
    public bool Get(int key)
    {
        if (_lost[key]) return false;
        ulong* buf = stackalloc ulong[Words];
        if (agent.CopyChecked(buf, Base + (long)key * Slot, Slot) != 0) { _lost[key] = true; return false; }
        if (!Holds(buf, key, _versions[key])) Interlocked.Increment(ref _corrupt);
        return true;
    }

    /// <summary>Writes the next version of a key; false if it was lost. Only the key's owner thread writes it.</summary>
    public bool Put(int key)
    {
        if (_lost[key]) return false;
        ulong* buf = stackalloc ulong[Words];
        uint v = _versions[key] + 1;
        Build(buf, key, v);
        if (agent.CopyChecked(Base + (long)key * Slot, buf, Slot) != 0) { _lost[key] = true; return false; }
        _versions[key] = v;
        return true;
    }

    /// <summary>After the run: every key outside a lost page holds its last version, every key inside one faults.</summary>
    public (long VerifiedBytes, long LostBytes, long Mismatches, List<long> LostPages, long UnexpectedReads) VerifyAll()
    {
        long ok = 0, lostBytes = 0, bad = 0, unexpected = 0;
        var pages = new SortedSet<long>();
        ulong* buf = stackalloc ulong[Words];
        for (int k = 0; k < Keys; k++)
        {
            byte* p = Base + (long)k * Slot;
            bool lost = agent.IsLost((nint)p);
            nuint left = agent.CopyChecked(buf, p, Slot);
            if (lost)
            {
                pages.Add(((long)k * Slot) & ~(Uapi.PAGE_SIZE - 1));
                lostBytes += Slot;
                if (left != Slot) unexpected++; // a lost page must not be readable
            }
            else if (left != 0 || !Holds(buf, k, _versions[k])) bad++;
            else ok += Slot;
        }
        return (ok, lostBytes, bad, pages.ToList(), unexpected);
    }

    /// <summary>Keys a worker found lost during the run.</summary>
    public int LostKeysSeen => _lost.Count(l => l);
}

/// <summary>Worker threads of the store: key k belongs to worker k mod N; 80 % gets, 20 % puts, random keys.</summary>
internal sealed class Workers
{
    private readonly Thread[] _threads;
    private volatile bool _stop;
    public readonly long[] Ops, Failed;

    public Workers(KvStore store, int n)
    {
        Ops = new long[n]; Failed = new long[n];
        _threads = new Thread[n];
        for (int w = 0; w < n; w++)
        {
            int me = w;
            _threads[w] = new Thread(() => Run(store, me, n)) { IsBackground = true, Name = "kv-worker-" + me };
            _threads[w].Start();
        }
    }

    private void Run(KvStore s, int me, int n)
    {
        ulong x = 0x9E3779B97F4A7C15UL * (ulong)(me + 1);
        int mine = (s.Keys - me + n - 1) / n;
        while (!_stop)
        {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            int key = me + n * (int)(x % (ulong)mine);
            bool ok = (x >> 60) < 13 ? s.Get(key) : s.Put(key);
            Volatile.Write(ref Ops[me], Ops[me] + 1);
            if (!ok) Failed[me]++;
        }
    }

    public long TotalOps => Ops.Sum();

    public void Stop()
    {
        _stop = true;
        foreach (var t in _threads) t.Join();
    }
}

namespace HugeFault.Recovery.Demo;

/// <summary>
/// A thread that reads one 4 KiB page of the store with ordinary loads (no checked copy): when that huge page is
/// poisoned it faults, is held in the agent's handler in the middle of managed code, and continues after the swap.
/// It reads a page that is not the injected one, since an ordinary load of a lost page would (rightly) kill it.
/// </summary>
internal sealed unsafe class PlainReader
{
    private readonly Thread _t;
    private volatile bool _stop;
    public long Loops;
    public ulong Sum;
    public int Tid;

    public PlainReader(byte* page)
    {
        _t = new Thread(() => Run((ulong*)page)) { IsBackground = true, Name = "plain-reader" };
        _t.Start();
    }

    private void Run(ulong* p)
    {
        Tid = Guest.Tid();
        while (!_stop)
        {
            ulong s = 0;
            for (int i = 0; i < 512; i++) s += p[i];
            Sum = s;
            Loops++;
        }
    }

    public void Stop()
    {
        _stop = true;
        _t.Join();
    }
}

/// <summary>
/// A thread that allocates all the time, so garbage collections start while other threads are held in the
/// handler. The agent runs no managed code, so such a collection just waits for them; this thread records the
/// longest stall it saw.
/// </summary>
internal sealed class Allocator
{
    private readonly Thread _t;
    private volatile bool _stop;
    public long Allocations, MaxStallNs;
    public int Collections;

    public Allocator()
    {
        _t = new Thread(Run) { IsBackground = true, Name = "allocator" };
        _t.Start();
    }

    private void Run()
    {
        int gc0 = GC.CollectionCount(0);
        long last = Guest.Now();
        object? keep = null;
        while (!_stop)
        {
            keep = new byte[256 + (int)(Allocations & 1023)];
            Allocations++;
            long now = Guest.Now();
            if (now - last > MaxStallNs) MaxStallNs = now - last;
            last = now;
        }
        GC.KeepAlive(keep);
        Collections = GC.CollectionCount(0) - gc0;
    }

    public void Stop()
    {
        _stop = true;
        _t.Join();
    }
}

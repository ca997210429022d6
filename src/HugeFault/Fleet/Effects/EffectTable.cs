using System.Collections.Concurrent;
using System.Diagnostics;
using HugeFault.Mm;
using HugeFault.Policies;

namespace HugeFault.Fleet;

/// <summary>
/// What one policy does to a 1 GiB page and its VM for each class of UE event, asked of its kernel model on the
/// canonical host (<see cref="ProbeHost"/>) the first time the fleet meets the class, and kept for the process
/// (<see cref="For"/>). Lookups are lock-free and allocation-free; a miss runs the probes under the table's lock, and
/// the answer is a pure function of (policy, parameters, class), so results do not depend on which thread asked first.
/// <para>Sizes: an event with n bad 4 KiB pages in m 2 MiB regions is read off one, two (same region) and three (new
/// region) bad lines (<see cref="Affine"/>). The three lines are all bad before the first is handled, as a fault's lines
/// are; a policy whose handling of the first error reacts to the others (a design that copies the page around every
/// poisoned line at once) is measured with the lines of each size present on hosts of their own.</para>
/// <para>Later errors on a page the VM still holds are measured on the same host after the first error: a further line
/// found by the scrub is the second and third error above, one read by a vCPU is measured there too; a later error of
/// another kind or with another spare-page situation gets a probe of its own.</para>
/// </summary>
public sealed class EffectTable
{
    private static readonly ConcurrentDictionary<string, EffectTable> Tables = new();

    private readonly EventEffect?[] _first = new EventEffect?[EventClass.Count];
    private readonly EventEffect?[][] _further = new EventEffect?[EventClass.Count][];
    private readonly Dictionary<string, FrameRelease> _releaseBySignature = new();
    private readonly object _lock = new();
    private readonly bool _readsEnlightened;
    private long _probeTicks;

    private EffectTable(string policy, IReadOnlyDictionary<string, string> parameters)
    {
        Policy = policy;
        Parameters = parameters;
        // Does the design care whether the guest accepts rewritten lines? Only then are both kinds of guest asked about.
        var recorder = new ReadRecorder(parameters);
        RecoveryPolicies.Create(policy, recorder);
        _readsEnlightened = recorder.Read.Contains("enlightened");
        for (int i = 0; i < _further.Length; i++) _further[i] = new EventEffect?[EventClass.Count];
    }

    public string Policy { get; }
    public IReadOnlyDictionary<string, string> Parameters { get; }
    /// <summary>Canonical hosts built so far, and the time spent on them.</summary>
    public int Probes { get; private set; }
    public TimeSpan ProbeTime => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _probeTicks));

    /// <summary>The process-wide table of <paramref name="policy"/> with <paramref name="parameters"/> (created empty, filled on demand).</summary>
    public static EffectTable For(string policy, IReadOnlyDictionary<string, string> parameters)
    {
        string key = policy + "\0" + string.Join("\0", parameters.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key + "=" + kv.Value));
        return Tables.GetOrAdd(key, _ => new EffectTable(policy, parameters));
    }

    /// <summary>A table that is not the process-wide one (benchmarks of building it).</summary>
    internal static EffectTable Fresh(string policy, IReadOnlyDictionary<string, string> parameters) => new(policy, parameters);

    /// <summary>
    /// Asks about the classes nearly every run meets (first errors of permanent and transient poison on a VM's page,
    /// scrubbed or read, and on a free page, with a spare page at hand), so that a run's workers find them ready.
    /// </summary>
    public void Prepare()
    {
        foreach (var kind in new[] { PoisonKind.Permanent, PoisonKind.Transient })
        {
            First(EventClass.FreeId(kind, true));
            foreach (bool consumed in new[] { false, true })
            foreach (bool enlightened in new[] { false, true })
                First(EventClass.MappedId(kind, consumed, true, enlightened));
        }
    }

    /// <summary>
    /// The class whose answer stands for <paramref name="id"/>: deposited poison is asked as transient (the kernel model
    /// treats them alike: both are rewritable, PhysicalMemory.RepairLine; a test keeps it so), and a design that never
    /// reads the <c>enlightened</c> parameter is asked about one kind of guest.
    /// </summary>
    private int Canon(int id)
    {
        var c = EventClass.FromId(id);
        if (c.Kind == PoisonKind.Deposited) c = c with { Kind = PoisonKind.Transient };
        if (!c.Mapped) return EventClass.FreeId(c.Kind, c.SparePage);
        return (_readsEnlightened || !c.Enlightened ? c : c with { Enlightened = false }).Id;
    }

    /// <summary>The first error on a healthy page (free or the VM's) of class <paramref name="classId"/>.</summary>
    public EventEffect First(int classId) => Volatile.Read(ref _first[classId]) ?? Fill(classId, -1);

    /// <summary>A later error of class <paramref name="classId"/> on a page a first error of class <paramref name="heldBy"/> left damaged and held by its VM.</summary>
    public EventEffect Further(int heldBy, int classId) => Volatile.Read(ref _further[heldBy][classId]) ?? Fill(classId, heldBy);

    private EventEffect Fill(int classId, int heldBy)
    {
        lock (_lock)
        {
            long start = Stopwatch.GetTimestamp();
            try
            {
                int canon = Canon(classId);
                if (heldBy < 0)
                {
                    if (_first[canon] is null) ProbeFirst(EventClass.FromId(canon));
                    var e = _first[canon]!;
                    Volatile.Write(ref _first[classId], e);
                    return e;
                }
                int held = Canon(heldBy);
                if (_further[held][canon] is null) ProbeLater(EventClass.FromId(held), EventClass.FromId(canon));
                var f = _further[held][canon]!;
                Volatile.Write(ref _further[heldBy][classId], f);
                return f;
            }
            finally { Interlocked.Add(ref _probeTicks, Stopwatch.GetTimestamp() - start); }
        }
    }

    private ProbeHost Host(EventClass c)
    {
        Probes++;
        return new ProbeHost(Policy, Parameters, c.Mapped, c.SparePage, c.Enlightened);
    }

    // Error spots (2 MiB region, 4 KiB page in it): the first error, a second page in its region, a third region. Later
    // errors on a held page: one read by a vCPU in a region of its own, and for a probe of later errors three more.
    private static readonly (int Region, int Page)[] Spots = [(0, 0), (0, 256), (256, 0)];
    private static readonly (int Region, int Page)[] LaterSpots = [(128, 0), (128, 256), (384, 0)];
    private static readonly (int Region, int Page) LaterRead = (64, 0);

    /// <summary>The effect whose first error took the host from <paramref name="before"/> to <paramref name="first"/>, sizes by <paramref name="size"/>.</summary>
    private static EventEffect Effect(FrameBacking backing, ProbeState before, ProbeState first, Func<Func<ProbeState, long>, Affine> size, long extraFurther) => new()
    {
        Backing = backing,
        // the bad line was rewritten and the host lost nothing (the guest may still offline the page it was told about)
        Repaired = first.Rewritten && first.Stranded == before.Stranded,
        Fallback = first.Fallback,
        SignalLsb = first.Lsb,
        GuestLost = size(s => s.GuestLost),
        UnknownLost = size(s => s.UnknownLost),
        Stranded = size(s => s.Stranded),
        PageTables = size(s => s.PageTables),
        Mces = size(s => s.Mces),
        ActionRequired = size(s => s.ActionRequired),
        GuestDied = size(s => s.GuestDied ? 1 : 0),
        ExtraFirst = first.Extra,
        ExtraFurther = extraFurther,
    };

    /// <summary>
    /// A first error of class <paramref name="c"/>: one host where the three lines are all bad before the first is handled,
    /// handled one after the other. If the kernel left the other two alone while handling the first, each line is handled
    /// by itself and the three states give the size dependence, and the same host goes on to later errors and the VM's
    /// exit; otherwise each size is measured on a host of its own with its lines present.
    /// </summary>
    private void ProbeFirst(EventClass c)
    {
        var host = Host(c);
        var s0 = host.Before;
        host.Poison(Spots.AsSpan(1), c.Kind);
        var s1 = host.Error(Spots[0], c.Kind, c.Consumed, poisoned: false);
        bool independent = host.Untouched(Spots.AsSpan(1));
        var backing = host.Backing();
        var s2 = host.Error(Spots[1], c.Kind, false, poisoned: true);
        var s3 = host.Error(Spots[2], c.Kind, false, poisoned: true);
        long extra = Math.Max(s2.Extra, s3.Extra);
        EventEffect e;
        var later = host;
        if (independent) e = Effect(backing, s0, s1, q => new(q(s1) - q(s0), q(s2) - q(s1), q(s3) - 2 * q(s2) + q(s1)), extra);
        else
        {
            // The first error saw its neighbours: (1 page) and (2 pages, 1 region) on hosts of their own with their lines
            // present; (3 pages, 2 regions) is the host above after all three.
            var one = Host(c);
            var t1 = one.Error(Spots[0], c.Kind, c.Consumed);
            backing = one.Backing();
            var two = Host(c);
            two.Poison(Spots.AsSpan(1, 1), c.Kind);
            var u1 = two.Error(Spots[0], c.Kind, c.Consumed);
            var u2 = two.Error(Spots[1], c.Kind, false, poisoned: true);
            e = Effect(backing, s0, t1, q => new(q(t1) - q(s0), q(u2) - q(t1), q(s3) - q(t1) - 2 * (q(u2) - q(t1))), Math.Max(u1.Extra, u2.Extra));
            later = one;
        }
        if (c.Mapped && backing is FrameBacking.SamePage or FrameBacking.Unreachable && !e.Repaired && later.GuestAlive)
        {
            EventEffect scrubbed, consumed;
            if (independent)
            {
                // Later errors of the same kind while the VM holds the page: one found by the scrub is the third error
                // above (a new region) with the second's per-page cost; one read by a vCPU is measured here.
                Affine Rest(Func<ProbeState, long> q, long first) => new(first, q(s2) - q(s1), q(s3) - 2 * q(s2) + q(s1));
                scrubbed = Effect(FrameBacking.SamePage, s2, s3, q => Rest(q, q(s3) - q(s2)), extra).Sealed();
                var y = later.Error(LaterRead, c.Kind, true);
                consumed = Effect(FrameBacking.SamePage, s3, y, q => Rest(q, q(y) - q(s3)), extra).Sealed();
            }
            else (scrubbed, consumed) = Later(later, c.Kind);
            SetLater(c, c with { Consumed = false }, scrubbed, later);
            SetLater(c, c with { Consumed = true }, consumed, later);
            e = e with { Release = ReleaseOf(later) };
        }
        e = e.Sealed();
        Volatile.Write(ref _first[c.Id], e);
        // A spare page the kernel never touched made no difference: the class without one has the same answer.
        if (c.SparePage && host.SpareUntouched && later.SpareUntouched && _first[(c with { SparePage = false }).Id] is null)
            Volatile.Write(ref _first[(c with { SparePage = false }).Id], e);
    }

    private void SetLater(EventClass held, EventClass c, EventEffect e, ProbeHost host)
    {
        if (_further[held.Id][c.Id] is null) Volatile.Write(ref _further[held.Id][c.Id], e);
        var none = c with { SparePage = !c.SparePage };
        if (c.SparePage && host.SpareUntouched && _further[held.Id][none.Id] is null) Volatile.Write(ref _further[held.Id][none.Id], e);
    }

    /// <summary>Later errors on a held page, one line at a time: three found by the scrub (new region, same region, new region), one read by a vCPU.</summary>
    private (EventEffect Scrubbed, EventEffect Consumed) Later(ProbeHost host, PoisonKind kind)
    {
        var b = host.Current;
        var x1 = host.Error(LaterSpots[0], kind, false);
        var x2 = host.Error(LaterSpots[1], kind, false);
        var x3 = host.Error(LaterSpots[2], kind, false);
        var y = host.Error(LaterRead, kind, true);
        long extra = Math.Max(x2.Extra, x3.Extra);
        Affine Rest(Func<ProbeState, long> q, long first) => new(first, q(x2) - q(x1), q(x3) - 2 * q(x2) + q(x1));
        return (Effect(FrameBacking.SamePage, b, x1, q => Rest(q, q(x1) - q(b)), extra).Sealed(),
            Effect(FrameBacking.SamePage, x3, y, q => Rest(q, q(y) - q(x3)), extra).Sealed());
    }

    /// <summary>
    /// Later errors of class <paramref name="c"/> on a page held after a first error of class <paramref name="held"/>: taken
    /// from a first error whose page ended up the same (<see cref="EventEffect.FrameKey"/>) where they were measured, else
    /// probed after a first error of <paramref name="held"/>.
    /// </summary>
    private void ProbeLater(EventClass held, EventClass c)
    {
        var key = _first[held.Id]?.FrameKey;
        for (int h = 0; h < EventClass.Count && key is not null; h++)
        {
            if (_further[h][c.Id] is { } known && _first[h] is { } other && other.FrameKey.Equals(key) && EventClass.FromId(h).Enlightened == held.Enlightened)
            {
                Volatile.Write(ref _further[held.Id][c.Id], known);
                return;
            }
        }
        var host = Host(held);
        host.Error(Spots[0], held.Kind, held.Consumed);
        host.SetSpare(c.SparePage);
        var (scrubbed, consumed) = Later(host, c.Kind);
        SetLater(held, c with { Consumed = false }, scrubbed, host);
        SetLater(held, c with { Consumed = true }, consumed, host);
    }

    /// <summary>The VM's exit; hosts whose page is in the same state (flags, references, mappings) exit the same way, so one is asked.</summary>
    private FrameRelease ReleaseOf(ProbeHost host)
    {
        string sig = host.FolioSignature();
        if (_releaseBySignature.TryGetValue(sig, out var r)) return r;
        r = host.Release();
        _releaseBySignature[sig] = r;
        return r;
    }

    /// <summary>A parameter dictionary that records which keys a policy asked for.</summary>
    private sealed class ReadRecorder(IReadOnlyDictionary<string, string> inner) : IReadOnlyDictionary<string, string>
    {
        public HashSet<string> Read { get; } = new();
        public string this[string key] { get { Read.Add(key); return inner[key]; } }
        public IEnumerable<string> Keys => inner.Keys;
        public IEnumerable<string> Values => inner.Values;
        public int Count => inner.Count;
        public bool ContainsKey(string key) { Read.Add(key); return inner.ContainsKey(key); }
        public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out string value) { Read.Add(key); return inner.TryGetValue(key, out value); }
        public IEnumerator<KeyValuePair<string, string>> GetEnumerator() => inner.GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

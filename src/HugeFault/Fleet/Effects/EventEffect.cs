using System.Runtime.CompilerServices;
using HugeFault.Mm;

namespace HugeFault.Fleet;

/// <summary>
/// The situation in which a UE event reaches a 1 GiB hugetlb page: what the fleet asks a policy about. Every field is a
/// fact of the host or guest, none names a policy.
/// </summary>
/// <param name="Mapped">The page backs a VM's guest RAM (else it is a free page of the pool).</param>
/// <param name="Kind">Permanent, transient or deposited poison.</param>
/// <param name="Consumed">A vCPU read a bad line (action required), else the patrol scrub found it (action optional).</param>
/// <param name="SparePage">A free 1 GiB page is available besides this one.</param>
/// <param name="Enlightened">The guest accepts that the host rewrites poisoned lines of its memory.</param>
public readonly record struct EventClass(bool Mapped, PoisonKind Kind, bool Consumed, bool SparePage, bool Enlightened)
{
    /// <summary>Number of distinct classes (<see cref="Id"/> is below it).</summary>
    public const int Count = 48;

    public int Id => ((((Mapped ? 1 : 0) * 3 + (int)Kind) * 2 + (Consumed ? 1 : 0)) * 2 + (SparePage ? 1 : 0)) * 2 + (Enlightened ? 1 : 0);

    public static EventClass FromId(int id) =>
        new(id / 24 == 1, (PoisonKind)(id / 8 % 3), id / 4 % 2 == 1, id / 2 % 2 == 1, id % 2 == 1);

    /// <summary>The class of an event on a free page (nobody consumes it, nobody's guest accepts anything).</summary>
    public static int FreeId(PoisonKind kind, bool spare) => (int)kind * 8 + (spare ? 2 : 0);

    public static int MappedId(PoisonKind kind, bool consumed, bool spare, bool enlightened) =>
        24 + (int)kind * 8 + (consumed ? 4 : 0) + (spare ? 2 : 0) + (enlightened ? 1 : 0);

    public override string ToString() =>
        $"{(Mapped ? "guest" : "free")} page, {Kind.ToString().ToLowerInvariant()}, {(Consumed ? "consumed" : "scrubbed")}, {(SparePage ? "" : "no ")}spare page{(Mapped ? Enlightened ? ", enlightened guest" : ", unenlightened guest" : "")}";
}

/// <summary>
/// A quantity of one event as a function of its size: <see cref="First"/> for one bad line, plus <see cref="PerPage"/> for
/// each further bad 4 KiB page in a 2 MiB region that already has one, plus <see cref="PerRegion"/> more for each further
/// 2 MiB region. Measured on the kernel model from three errors (one, a second in the same region, a third in another).
/// </summary>
public readonly record struct Affine(long First, long PerPage, long PerRegion)
{
    /// <summary>The quantity for <paramref name="pages"/> bad 4 KiB pages in <paramref name="regions"/> 2 MiB regions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long At(long pages, long regions) => First + (pages - 1) * PerPage + (regions - 1) * PerRegion;

    /// <summary>From the cumulative states after the first, second (same region) and third (new region) error.</summary>
    public static Affine Of(long before, long one, long two, long three)
    {
        long perPage = two - one;
        return new Affine(one - before, perPage, three - two - perPage);
    }

    public override string ToString() => PerPage == 0 && PerRegion == 0 ? First.ToString() : $"{First} +{PerPage}/page +{PerRegion}/region";
}

/// <summary>
/// What one UE event does to a 1 GiB page and its VM under one policy, read off the policy's kernel model and the VM model
/// on the canonical host (<see cref="ProbeHost"/>). Immutable; the fleet's per-event fast path reads it.
/// </summary>
public sealed record EventEffect
{
    /// <summary>Where the guest's good data of the gigabyte lives afterwards.</summary>
    public FrameBacking Backing { get; init; }
    /// <summary>The bad lines were rewritten: nothing is lost or quarantined.</summary>
    public bool Repaired { get; init; }
    /// <summary>The policy said it fell back to another design.</summary>
    public bool Fallback { get; init; }
    /// <summary>si_addr_lsb of the SIGBUS the VMM received (0: none).</summary>
    public int SignalLsb { get; init; }
    /// <summary>What the page becomes when its VM exits (for events that leave the VM holding a damaged page).</summary>
    public FrameRelease Release { get; init; }
    /// <summary>Bytes of the gigabyte the guest lost (unreachable or offlined).</summary>
    public Affine GuestLost { get; init; }
    /// <summary>Of those, bytes the guest does not know about (later touches of them machine-check).</summary>
    public Affine UnknownLost { get; init; }
    /// <summary>Host memory stranded by the event, bytes.</summary>
    public Affine Stranded { get; init; }
    /// <summary>Host page-table bytes the event added (one mapping of the page).</summary>
    public Affine PageTables { get; init; }
    /// <summary>Machine checks injected into the guest.</summary>
    public Affine Mces { get; init; }
    /// <summary>Of those, action-required ones (fatal when the page held guest-kernel memory).</summary>
    public Affine ActionRequired { get; init; }
    /// <summary>1 when the guest or its VMM died during the event.</summary>
    public Affine GuestDied { get; init; }
    /// <summary>
    /// The host panicked handling an event with one bad 4 KiB page (<see cref="PanicOne"/>) or with more
    /// (<see cref="PanicMore"/>): the kernel model loaded a poisoned line in kernel mode outside a machine-check-safe copy
    /// (Kernel.CopyToUserConsumesPoison, Kernel.MigrationCopyHitsPoison). Every VM of the host dies and it reboots.
    /// </summary>
    public bool PanicOne { get; init; }
    public bool PanicMore { get; init; }

    /// <summary>Does an event with <paramref name="pages"/> bad 4 KiB pages panic the host?</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Panics(long pages) => pages > 1 ? PanicMore : PanicOne;

    /// <summary>Largest extra memory the recovery needed for the first error, and for any further one.</summary>
    public long ExtraFirst { get; init; }
    public long ExtraFurther { get; init; }
    /// <summary>
    /// Everything that decides the fleet's trajectory (frame states, VM deaths, capacity, guest memory, counts), not the
    /// page-table or extra memory, the signal nor whether the policy fell back, as a small integer: equal ids mean equal fields, so policies whose
    /// effects have equal ids on a server's events make the same decisions there and share one run.
    /// </summary>
    public int Trajectory { get; private init; }

    /// <summary>
    /// What decides a policy's own tallies of stranded capacity, guest memory and fallbacks (where the data lives, what
    /// the page becomes on release, what is lost and stranded) as a small integer: two policies of a run whose effects
    /// have equal ids on every event so far have equal tallies, kept once (equal <see cref="Trajectory"/> ids with different
    /// tally ids differ only in <see cref="Fallback"/>).
    /// </summary>
    public int Tally { get; private init; }

    /// <summary>
    /// Everything the fleet reads of the effect (its <see cref="Trajectory"/> and <see cref="Tally"/>, page tables and extra memory) as a small
    /// integer: policies whose effects of an event have equal ids do exactly the same with it, tallies included.
    /// </summary>
    public int Behaviour { get; private init; }

    /// <summary>The effect adds to the guest-memory or fallback tallies (else <see cref="PolicyRun"/> skips counting it).</summary>
    public bool Counts { get; private init; }

    public long ExtraAt(long pages, long regions) => pages > 1 || regions > 1 ? Math.Max(ExtraFirst, ExtraFurther) : ExtraFirst;

    /// <summary>What the page is after the event (where the data lives, what is lost and stranded, what its release does): events with equal keys leave equal pages behind.</summary>
    public (FrameBacking, bool, FrameRelease, Affine, Affine) FrameKey => (Backing, Repaired, Release, Stranded, GuestLost);

    // Not Fallback: whether the policy fell back is a count of its own (a tally, kept per policy like guest memory), not
    // something the host does differently; a design that falls back on an event shares the run of the design it fell back to.
    private readonly record struct TrajectoryKey(FrameBacking Backing, bool Repaired, FrameRelease Release, Affine GuestLost,
        Affine UnknownLost, Affine Stranded, Affine Mces, Affine ActionRequired, Affine GuestDied, bool PanicOne, bool PanicMore);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<TrajectoryKey, int> Trajectories = new();

    /// <summary>The effect with its <see cref="Trajectory"/> id set (interned process-wide).</summary>
    public EventEffect Sealed()
    {
        var key = new TrajectoryKey(Backing, Repaired, Release, GuestLost, UnknownLost, Stranded, Mces, ActionRequired, GuestDied, PanicOne, PanicMore);
        int id = Trajectories.GetOrAdd(key, _ => Interlocked.Increment(ref _nextTrajectory));
        int tally = Tallies.GetOrAdd(new TallyKey(Backing, Repaired, Fallback, Release, GuestLost, Stranded), _ => Interlocked.Increment(ref _nextTally));
        int behaviour = Behaviours.GetOrAdd((id, tally, PageTables, ExtraFirst, ExtraFurther), _ => Interlocked.Increment(ref _nextBehaviour));
        return this with { Trajectory = id, Tally = tally, Behaviour = behaviour, Counts = Fallback || GuestLost != default };
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int, int, Affine, long, long), int> Behaviours = new();
    private static int _nextBehaviour;

    private readonly record struct TallyKey(FrameBacking Backing, bool Repaired, bool Fallback, FrameRelease Release, Affine GuestLost, Affine Stranded);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<TallyKey, int> Tallies = new();
    private static int _nextTrajectory, _nextTally;
}

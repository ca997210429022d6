using HugeFault.Mm;
using HugeFault.Scenarios;
using HugeFault.Virt;

namespace HugeFault.Fleet;

/// <summary>Where the guest's good data of a damaged gigabyte lives after an error.</summary>
public enum FrameBacking : byte
{
    /// <summary>Still in the damaged 1 GiB page (mapped whole or around the bad 4 KiB pages).</summary>
    SamePage = 0,
    /// <summary>Nowhere the guest can reach: the whole gigabyte is unmapped and refused on fault.</summary>
    Unreachable = 1,
    /// <summary>In another 1 GiB page of the pool (the data was copied there).</summary>
    OtherHugePage = 2,
    /// <summary>In memory outside the 1 GiB pool (4 KiB or 2 MiB pages).</summary>
    OutsidePool = 3,
}

/// <summary>What a damaged 1 GiB page becomes when its VM exits.</summary>
public enum FrameRelease : byte
{
    /// <summary>It goes back to the pool as a healthy 1 GiB page.</summary>
    BackToPool = 0,
    /// <summary>It is dissolved: the healthy 4 KiB pages go to the buddy allocator, the poisoned ones stay quarantined.</summary>
    Dissolved = 1,
    /// <summary>It stays allocated and poisoned, whole, until the host reboots (the kernel still holds a reference to it).</summary>
    Kept = 2,
}

/// <summary>The host and guest right after one error of a probe, cumulative since the host was built.</summary>
/// <param name="GuestLost">Bytes of the VM's gigabyte the guest can no longer use: unreachable for it, or offlined by it.</param>
/// <param name="UnknownLost">Of those, bytes the guest was not told about (each later touch is a new machine check).</param>
/// <param name="Mces">Machine checks injected into the guest.</param>
/// <param name="ActionRequired">Of those, action-required ones on pages the guest was using.</param>
/// <param name="GuestDied">The guest panicked or its VMM exited.</param>
/// <param name="Stranded">Host memory no longer usable: poisoned 1 GiB pages nobody maps, poisoned pages still mapped, quarantined 4 KiB pages.</param>
/// <param name="PageTables">Host page-table bytes.</param>
/// <param name="Extra">Largest extra memory the handling of this error needed at once.</param>
/// <param name="Lsb">si_addr_lsb of the first BUS_MCEERR_* SIGBUS the VMM's threads got for this error (0: none).</param>
/// <param name="Fallback">The policy said it fell back to another design for this error.</param>
/// <param name="Rewritten">The bad line was rewritten (no longer poisoned).</param>
public readonly record struct ProbeState(long GuestLost, long UnknownLost, int Mces, int ActionRequired, bool GuestDied, long Stranded,
    long PageTables, long Extra, int Lsb, bool Fallback, bool Rewritten);

/// <summary>
/// The canonical small host on which the fleet asks a policy what an error does: one policy's kernel model
/// (<see cref="Kernel"/> with that <see cref="Policies.IRecoveryPolicy"/>) and the VM model (<see cref="Vm"/>). Enough
/// 4 KiB memory for any copy; a 1 GiB hugetlb pool holding the VM's page, a free target page when the error hits a free
/// page, and a spare free page when asked; one KVM guest with 1 GiB of RAM on one 1 GiB page, faulted in by QEMU
/// (prealloc), guest-kernel fraction 0 and an unlimited machine-check budget (the fleet draws which guest pages hold
/// guest-kernel memory and applies the guest's machine-check budget itself, see <see cref="GuestFate"/>). The guest's
/// acceptance of rewritten lines reaches the kernel model as the policy parameter <c>enlightened</c>.
/// Errors are single poisoned cachelines placed by (2 MiB region, 4 KiB page in it) of the target page; each goes
/// through the kernel as a patrol scrub (memory_failure() without MF_ACTION_REQUIRED) or a vCPU read (a machine check in
/// guest mode).
/// </summary>
public sealed class ProbeHost
{
    private const ulong GiB = Units.GiB;
    /// <summary>The bad line's offset in its 4 KiB page.</summary>
    private const ulong LineOffset = 0x40;

    private readonly Kernel _k;
    private readonly Vm _vm;
    private readonly Folio _target;
    private readonly Folio? _spare;
    private readonly List<ulong> _bad = new();

    /// <param name="policy">Registered policy name.</param>
    /// <param name="parameters">Its parameters (the probe adds <c>enlightened</c>).</param>
    /// <param name="mapped">The target page is the VM's (else a free page of the pool).</param>
    /// <param name="spare">A free 1 GiB page besides the target is available.</param>
    /// <param name="enlightened">The guest accepts rewritten lines.</param>
    public ProbeHost(string policy, IReadOnlyDictionary<string, string> parameters, bool mapped, bool spare, bool enlightened)
        : this(policy, parameters, mapped, spare, enlightened, new GuestConfig { KernelFraction = 0, MaxMces = null }) { }

    /// <summary>The same host with another guest OS model (tests replay the guest's own rules with it).</summary>
    internal ProbeHost(string policy, IReadOnlyDictionary<string, string> parameters, bool mapped, bool spare, bool enlightened, GuestConfig guest)
    {
        var pp = new Dictionary<string, string>(parameters) { ["enlightened"] = enlightened ? "true" : "false" };
        long pool = 1 + (mapped ? 0 : 1) + (spare ? 1 : 0);
        _k = new Kernel(new KernelConfig { MemoryBytes = (ulong)(pool + 3) * GiB, HugePages1G = pool, Policy = policy, PolicyParams = pp });
        _vm = new Vm(_k, "vm", GiB, GiB, 1, guest, new Version(10, 0));
        // QEMU preallocates guest RAM (reads: the page is faulted in and mapped by one PUD entry; its content stays zero).
        _k.Access(_vm.Vmm, _vm.RamHva, GiB, write: false);
        var free = _k.Phys.Folios.Values.Where(f => f.IsHugetlb && f.Flags.Has(PageFlags.HugetlbFreed)).OrderBy(f => f.Pfn).ToList();
        _target = mapped ? _vm.Ram.PageCache[0] : free[0];
        _spare = spare ? free[mapped ? 0 : 1] : null;
        Mapped = mapped;
        Before = Measure(0, false, false);
    }

    public bool Mapped { get; }
    /// <summary>The state before any error.</summary>
    public ProbeState Before { get; }
    public bool GuestAlive => _vm.Alive;
    /// <summary>The guest (tests drive it further).</summary>
    internal Vm Guest => _vm;

    /// <summary>Poisons the lines at <paramref name="spots"/> (2 MiB region, 4 KiB page in it) without anyone noticing yet.</summary>
    public void Poison(ReadOnlySpan<(int Region, int Page)> spots, PoisonKind kind)
    {
        foreach (var s in spots) _k.Phys.PoisonLine(_target.PhysAddr + Offset(s), kind);
    }

    private static ulong Offset((int Region, int Page) s) => (ulong)s.Region * Units.PMD_SIZE + (ulong)s.Page * Units.PAGE_SIZE + LineOffset;

    /// <summary>The state now.</summary>
    public ProbeState Current => Measure(0, false, false);

    /// <summary>
    /// One bad line at <paramref name="spot"/> of the target page (poisoned now unless <paramref name="poisoned"/>) reaches the
    /// kernel: found by the patrol scrub, or read by vCPU 0 when <paramref name="consumed"/> (the target must be the VM's).
    /// </summary>
    public ProbeState Error((int Region, int Page) spot, PoisonKind kind, bool consumed, bool poisoned = false)
    {
        ulong off = Offset(spot);
        ulong pa = _target.PhysAddr + off;
        _bad.Add(off);
        int traceStart = _k.Trace.Count;
        _k.Stats.ExtraBytesPeak = _k.Stats.ExtraBytesNow;
        long extraBefore = _k.Stats.ExtraBytesNow;
        if (!poisoned) _k.Phys.PoisonLine(pa, kind);
        if (consumed && Mapped && _vm.Alive) _vm.GuestAccess(0, off, Units.CACHELINE, write: false);
        else _k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
        int lsb = 0;
        bool fallback = false;
        for (int i = traceStart; i < _k.Trace.Count; i++)
        {
            if (lsb == 0 && _k.Trace[i] is SignalEvent { Signo: Sig.SIGBUS, SiCode: Sig.BUS_MCEERR_AR or Sig.BUS_MCEERR_AO } s && IsVmmThread(s.Task))
                lsb = s.SiAddrLsb;
            // the policies' convention for "my design could not act here, another one decided" (their kernel-model action text)
            if (_k.Trace[i] is ActionEvent a && a.Text.Contains("falling back", StringComparison.Ordinal)) fallback = true;
        }
        long extra = Math.Max(0, _k.Stats.ExtraBytesPeak - extraBefore);
        return Measure(extra, fallback, _k.Phys.LinePoison(pa) is null, lsb);
    }

    private bool IsVmmThread(string comm) => comm == _vm.Vmm.Comm || _vm.Vcpus.Any(v => v.Comm == comm);

    /// <summary>
    /// Did the kernel leave the lines at <paramref name="spots"/> (poisoned, not reported yet) alone while handling the errors
    /// so far: not quarantined, not rewritten, not fake-poisoned, and as reachable as a healthy page of their region?
    /// </summary>
    public bool Untouched(ReadOnlySpan<(int Region, int Page)> spots)
    {
        foreach (var s in spots)
        {
            ulong off = Offset(s);
            ulong pfn = (_target.PhysAddr + off) >> Units.PAGE_SHIFT;
            if (_k.Phys.LinePoison(_target.PhysAddr + off) is null || _k.Phys.IsRawHwpoison(pfn) || _target.RawHwp.Contains(pfn)) return false;
            if (_k.Phys.Folios.Values.Any(f => f.FakePoison.Contains(pfn))) return false;
            if (!Mapped || !_vm.Vmm.Alive) continue;
            ulong page = Units.AlignDown(off, Units.PAGE_SIZE);
            ulong healthy = (ulong)s.Region * Units.PMD_SIZE + (ulong)((s.Page + 1) % 512) * Units.PAGE_SIZE;
            if (Reachable(_vm.RamHva + page, out _) != Reachable(_vm.RamHva + healthy, out _)) return false;
        }
        return true;
    }

    /// <summary>The spare page is still free and was never used (only meaningful for hosts built with one).</summary>
    public bool SpareUntouched => _spare is null || (_spare.Flags.Has(PageFlags.HugetlbFreed) && !_spare.IsHwpoison && _k.H1G.FreeList.Contains(_spare) && _k.Phys.Folios.TryGetValue(_spare.Pfn, out var f) && f == _spare);

    /// <summary>Takes the spare page away (allocated elsewhere) or adds one to the pool.</summary>
    public void SetSpare(bool spare)
    {
        long free = _k.H1G.free_huge_pages - (Mapped ? 0 : (_target.Flags.Has(PageFlags.HugetlbFreed) && !_target.IsHwpoison ? 1 : 0));
        if (spare && free == 0) _k.SetNrHugepages(_k.H1G, _k.H1G.nr_huge_pages + 1);
        else if (!spare && free > 0) _k.SetNrHugepages(_k.H1G, _k.H1G.nr_huge_pages - free);
    }

    /// <summary>Where the guest's good data of the target gigabyte lives now.</summary>
    public FrameBacking Backing()
    {
        if (!_vm.Vmm.Alive) return FrameBacking.Unreachable;
        ulong far = FarPage();
        ulong hva = _vm.RamHva + far;
        if (!Reachable(hva, out ulong? pfn)) return FrameBacking.Unreachable;
        if (pfn is null || _target.ContainsPfn(pfn.Value)) return FrameBacking.SamePage;
        return _k.Phys.FolioOf(pfn.Value) is { IsHugetlb: true } f && f.Order == _k.H1G.Order ? FrameBacking.OtherHugePage : FrameBacking.OutsidePool;
    }

    /// <summary>A stand-in for what decides the page's release: its flags, references and mappings.</summary>
    public string FolioSignature()
    {
        var f = _target;
        bool alive = _k.Phys.Folios.TryGetValue(f.Pfn, out var g) && g == f;
        return $"{alive}/{f.Flags}/{f.RefCount}/{f.MfRefHeld}/{f.Mapcount}/{f.Mapping is not null}/{f.RawHwp.Count > 0}/{f.FakePoison.Count > 0}";
    }

    /// <summary>The VM exits (QEMU and its vCPU threads die, guest RAM is unmapped, its memfd closed): what becomes of the target page.</summary>
    public FrameRelease Release()
    {
        foreach (var t in _vm.Vcpus) _k.DoExit(t, "VM shut down");
        _k.DoExit(_vm.Vmm, "VM shut down");
        if (_k.Phys.Folios.TryGetValue(_target.Pfn, out var f) && f == _target && f.IsHugetlb)
            return f.IsHwpoison ? FrameRelease.Kept : FrameRelease.BackToPool;
        return _k.Phys.RawHwpoisonPages.Any(_target.ContainsPfn) || _k.Phys.Folios.ContainsKey(_target.Pfn) ? FrameRelease.Dissolved : FrameRelease.BackToPool;
    }

    // ---------------------------------------------------------------- measuring

    private ProbeState Measure(long extra, bool fallback, bool rewritten, int lsb = 0)
    {
        long lost = 0;
        if (Mapped)
        {
            long unreachable = UnreachableBytes();
            long offlined = _vm.OfflinedGfns.Count * (long)Units.PAGE_SIZE;
            lost = Math.Max(unreachable, offlined);
            long unknown = Math.Max(0, unreachable - offlined);
            return new ProbeState(lost, unknown, _vm.Mces, _vm.GuestProcessesKilled, !_vm.Alive, StrandedBytes(),
                _k.Stats.TablePagesNow * (long)Units.PAGE_SIZE, extra, lsb, fallback, rewritten);
        }
        return new ProbeState(0, 0, _vm.Mces, _vm.GuestProcessesKilled, !_vm.Alive, StrandedBytes(),
            _k.Stats.TablePagesNow * (long)Units.PAGE_SIZE, extra, lsb, fallback, rewritten);
    }

    /// <summary>Host memory no longer usable (<see cref="Comparison.HostMemoryLost"/> without fake poison: healthy pages kept unmapped for the guest's sake).</summary>
    private long StrandedBytes() =>
        Comparison.HostMemoryLost(_k) - _k.Phys.Folios.Values.Sum(f => (long)f.FakePoison.Count) * (long)Units.PAGE_SIZE;

    /// <summary>
    /// Bytes of the gigabyte the guest cannot reach, from the x86-64 leaf sizes: the whole gigabyte if a far page is
    /// unreachable, else per 2 MiB region with an error 2 MiB if a healthy neighbour page is unreachable, else the
    /// unreachable bad 4 KiB pages.
    /// </summary>
    private long UnreachableBytes()
    {
        if (!_vm.Vmm.Alive) return (long)GiB;
        if (_bad.Count == 0) return 0;
        if (!Reachable(_vm.RamHva + FarPage(), out _)) return (long)GiB;
        long bytes = 0;
        foreach (var region in _bad.Select(o => o / Units.PMD_SIZE).Distinct())
        {
            ulong neighbour = NeighbourPage(region);
            if (!Reachable(_vm.RamHva + neighbour, out _)) { bytes += (long)Units.PMD_SIZE; continue; }
            foreach (var page in _bad.Where(o => o / Units.PMD_SIZE == region).Select(o => Units.AlignDown(o, Units.PAGE_SIZE)).Distinct())
                if (!Reachable(_vm.RamHva + page, out _)) bytes += (long)Units.PAGE_SIZE;
        }
        return bytes;
    }

    private ulong FarPage()
    {
        var regions = _bad.Select(o => o / Units.PMD_SIZE).ToHashSet();
        for (ulong r = 0; r < 512; r++)
        {
            ulong cand = (r * 97 + 300) % 512;
            if (!regions.Contains(cand)) return cand * Units.PMD_SIZE + 5 * Units.PAGE_SIZE;
        }
        return GiB / 2;
    }

    private ulong NeighbourPage(ulong region)
    {
        var pages = _bad.Where(o => o / Units.PMD_SIZE == region).Select(o => (o % Units.PMD_SIZE) / Units.PAGE_SIZE).ToHashSet();
        for (ulong p = 0; p < 512; p++)
        {
            ulong cand = (p * 131 + 77) % 512;
            if (!pages.Contains(cand)) return region * Units.PMD_SIZE + cand * Units.PAGE_SIZE;
        }
        return region * Units.PMD_SIZE;
    }

    /// <summary>Would a guest access to <paramref name="hva"/> succeed without a memory error (as <see cref="Comparison.Inaccessible"/> decides, for one address)?</summary>
    private bool Reachable(ulong hva, out ulong? pfn)
    {
        pfn = null;
        var mm = _vm.Vmm.Mm;
        var vma = mm.FindVma(hva);
        if (vma is null) return false;
        var w = _k.Walk(mm, hva);
        var e = w.Entry;
        if (e.IsHwpoison || e.IsPoisonMarker) return false;
        if (e.Present && (w.Level == PtLevel.Pte || e.Huge))
        {
            ulong p = e.Pfn + ((hva - w.Va) >> Units.PAGE_SHIFT);
            pfn = p;
            var pf = _k.Phys.FolioOf(p);
            return !(pf is { IsHwpoison: true } && pf.RawHwp.Contains(p)) && !_k.Phys.IsRawHwpoison(p);
        }
        // not mapped now: would a fault map it?
        if (vma.File is not { } inode || !inode.PageCache.TryGetValue(vma.FileOffset(hva) >> inode.FolioShift, out var f)) return true;
        ulong fp = f.Pfn + ((vma.FileOffset(hva) & (f.Size - 1)) >> Units.PAGE_SHIFT);
        pfn = fp;
        if (f.FakePoison.Contains(fp)) return false;
        if (!f.IsHwpoison) return true;
        if (vma.Hstate is not null && !_k.Policy.AllowFaultOnPoisonedFolio(_k, vma, f, hva)) return false;
        return !f.RawHwp.Contains(fp);
    }
}

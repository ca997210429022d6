using HugeFault.Mm;

namespace HugeFault.Policies;

/// <summary>
/// Copy around the poison (Dan Williams, design-debate option 5). The kernel allocates a new huge page from
/// the pool, copies every good cacheline of the poisoned folio into it (a line that turns out poisoned during
/// the copy is skipped and recorded: the copy "retries" around it), remaps every mapper onto the new page,
/// and dissolves the old folio so only its bad raw pages stay quarantined. What the bad lines become in the
/// new page is <c>bad_line</c>: <c>fake-poison</c> (default: the 4 KiB pages holding them stay unmapped with
/// HGM-style 4 KiB poison entries, needed for guests, which may not see zeros) or <c>zero</c> (they read as
/// zeros: 64 bytes of data silently replaced per line). No free huge page: fall back to <c>fallback</c>
/// (default mainline). Works for permanent errors too.
/// <para>Assumption of this proposal: the kernel's copy is machine-check safe (copy_mc_to_kernel(), as migration's
/// folio_mc_copy() is since v6.11) and, unlike folio_mc_copy(), which gives up at the first bad line, resumes after each
/// bad line it meets and records its raw page. A plain copy (copy_page(), copy_to_user()) of a line bad in hardware but
/// not yet reported would panic the host instead (Kernel.CopyToUserConsumesPoison).</para>
/// </summary>
public sealed class CopyAroundPolicy : RecoveryPolicyBase
{
    /// <summary>This policy's name, summary, parameters and provenance (see <see cref="PolicyDescriptor"/>).</summary>
    public static readonly PolicyDescriptor Descriptor = new("copy-around", "kernel copies the good lines to a new huge page and swaps it in; bad 4 KiB fake-poisoned",
        p => new CopyAroundPolicy(p),
        Parameters:
        [
            new("bad_line", "fake-poison", "fake-poison|zero: what the bad lines become in the new page", ParameterKind.Choice, ["fake-poison", "zero"]),
            new("fallback", "mainline", "policy when no free huge page is left", ParameterKind.Policy),
        ],
        FallsBackWhen: "no free huge page in the pool: fallback");

    private readonly bool _zero;
    private readonly IRecoveryPolicy _fallback;

    public CopyAroundPolicy(IReadOnlyDictionary<string, string> parameters) : base(parameters)
    {
        _zero = parameters.TryGetValue("bad_line", out var b) && b == "zero";
        var fb = parameters.TryGetValue("fallback", out var f) ? f : "mainline";
        if (fb == "copy-around") throw new ArgumentException("copy-around cannot fall back to itself");
        _fallback = RecoveryPolicies.Create(fb, parameters);
    }

    public override string Name => Descriptor.Name;

    public override (MfResult, string) HandleInUseHugetlb(Kernel k, MfContext ctx)
    {
        var old = ctx.Folio;
        var h = k.HstateOf(old);
        bool zero = _zero && old.Mapping?.GuestMemory != true; // never zero guest memory behind the guest's back
        if (!old.Mapped && old.Mapping is not null) return (MfResult.MF_RECOVERED, "huge page"); // nothing to move yet
        var nf = k.AllocHugetlbFolio(h, hasReservation: false);
        if (nf is null)
        {
            k.Act($"copy-around: no free {h.Name} page; falling back to {_fallback.Name}");
            return _fallback.HandleInUseHugetlb(k, ctx);
        }
        k.Stats.AddExtra((long)h.Size);
        var tokill = k.CollectProcs(old, ctx.RawPfn, ctx.Flags);
        // copy every line except poisoned ones; raw pages holding known poison are skipped whole when the
        // error came without a cacheline address (software injection)
        var badLines = new List<ulong>();
        int retries = 0;
        foreach (var kv in k.Phys.PoisonedLines)
            if (kv.Key << Units.CACHELINE_SHIFT >= old.PhysAddr && kv.Key << Units.CACHELINE_SHIFT < old.PhysAddr + old.Size) badLines.Add(kv.Key << Units.CACHELINE_SHIFT);
        foreach (var line in badLines)
        {
            ulong raw = line >> Units.PAGE_SHIFT;
            if (!old.RawHwp.Contains(raw)) { old.RawHwp.Add(raw); k.NumPoisonedPages++; retries++; }
        }
        if (retries > 0) k.Act($"copy-around: the copy hit {retries} more poisoned line(s); retried around them");
        k.MigrateFolio(old, nf);
        var dc = nf.EnsureContent();
        var badPages = new SortedSet<ulong>();
        foreach (var raw in old.RawHwp)
        {
            var linesInPage = badLines.Where(l => l >> Units.PAGE_SHIFT == raw).ToList();
            ulong pageOff = (raw - old.Pfn) << Units.PAGE_SHIFT;
            if (linesInPage.Count == 0) { dc.Zero((uint)(pageOff >> 6), (uint)((pageOff + Units.PAGE_SIZE) >> 6)); k.Stats.BytesZeroed += (long)Units.PAGE_SIZE; }
            foreach (var l in linesInPage) { uint li = (uint)((l - old.PhysAddr) >> 6); dc.Zero(li, li + 1); k.Stats.BytesZeroed += (long)Units.CACHELINE; }
            badPages.Add(pageOff);
        }
        k.Act($"copy-around: {Units.Size(old.Size)} copied to new folio {Units.Hex(nf.Pfn)} except {badLines.Count} bad line(s) in {badPages.Count} x 4K; bad lines {(zero ? "read as zero" : "fake-poisoned at 4 KiB")}");
        if (!zero)
        {
            // the new page is healthy: the bad 4 KiB stay inaccessible as poison markers in every mapper
            nf.RawHwp.Clear();
            foreach (var (vma, hva) in k.FolioMappings(nf, onlyMapped: true))
            {
                vma.Flags |= VmFlags.VM_HUGETLB_HGM;
                foreach (var off in badPages) k.PoisonSubpageMapping(vma.Mm, hva + off, nf.Pfn + (off >> Units.PAGE_SHIFT), marker: true);
            }
            nf.FakePoison.UnionWith(badPages.Select(o => nf.Pfn + (o >> Units.PAGE_SHIFT)));
        }
        // the old folio: out of the page cache and unmapped; dissolve it, keeping only raw pages quarantined
        k.DropMfRef(old);
        if (k.Phys.Folios.ContainsKey(old.Pfn) && old.Flags.Has(PageFlags.HugetlbFreed)) k.ForceDissolve(h, old);
        k.Stats.AddExtra(-(long)h.Size);
        bool forcekill = true; // the owner must learn what happened to its data
        if (forcekill) k.KillProcs(tokill, true, false, ctx.RawPfn, ctx.Flags, zero ? Units.CACHELINE_SHIFT : Units.PAGE_SHIFT);
        return (MfResult.MF_RECOVERED, "huge page (copied around)");
    }

    public override bool AllowFaultOnPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong va) => _fallback.AllowFaultOnPoisonedFolio(k, vma, folio, va);
    public override bool MapPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong hva, bool writable) => _fallback.MapPoisonedFolio(k, vma, folio, hva, writable);
}

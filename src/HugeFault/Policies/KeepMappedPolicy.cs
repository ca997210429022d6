using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault.Policies;

/// <summary>
/// MFD_MF_KEEP_UE_MAPPED (Jiaqi Yan's proposal, spec §3.5 and case 34): memory_failure() marks the folio and
/// signals with si_addr_lsb = PAGE_SHIFT but does not unmap it; other subpages stay readable; touching the
/// poisoned raw page machine-checks again. The folio is offlined when it leaves the file (truncate, hole
/// punch) or when the file is released. With <c>require_flag=false</c> (the default, so that the policy can
/// be compared on any scenario) every hugetlb file behaves as if created with the flag; with
/// <c>require_flag=true</c> only memfds created with MFD_MF_KEEP_UE_MAPPED do and others get mainline.
/// </summary>
public sealed class KeepMappedPolicy : RecoveryPolicyBase
{
    /// <summary>This policy's name, summary, parameters and provenance (see <see cref="PolicyDescriptor"/>).</summary>
    public static readonly PolicyDescriptor Descriptor = new("keep-mapped", "MFD_MF_KEEP_UE_MAPPED: keep the folio mapped, signal lsb 12, offline on release",
        p => new KeepMappedPolicy(p),
        Provenance: "as posted: MFD_MF_KEEP_UE_MAPPED v3 (lore 20260203192352.2674184-1-jiaqiyan@google.com), selftest hugetlb-mfr.c",
        Parameters: [new("require_flag", "false", "only memfds created with MFD_MF_KEEP_UE_MAPPED keep the folio mapped", ParameterKind.Bool)],
        FallsBackWhen: "anonymous folios (or files without the flag when require_flag=true): mainline");

    private readonly bool _requireFlag;

    public KeepMappedPolicy(IReadOnlyDictionary<string, string> parameters) : base(parameters)
        => _requireFlag = parameters.TryGetValue("require_flag", out var v) && v == "true";

    public override string Name => Descriptor.Name;
    public override bool SupportsKeepUeMapped => true;

    private bool Applies(Folio f) => f.Mapping is { } m && !f.IsAnon && (!_requireFlag || m.KeepUeMapped);

    public override (MfResult, string) HandleInUseHugetlb(Kernel k, MfContext ctx)
    {
        if (!Applies(ctx.Folio)) return base.HandleInUseHugetlb(k, ctx);
        var folio = ctx.Folio;
        if (!folio.Mapped) return (MfResult.MF_RECOVERED, "huge page");
        var tokill = k.CollectProcs(folio, ctx.RawPfn, ctx.Flags);
        k.Act($"folio {Units.Hex(folio.Pfn)} stays mapped (MFD_MF_KEEP_UE_MAPPED); raw page {Units.Hex(ctx.RawPfn)} recorded");
        bool forcekill = folio.Flags.Has(PageFlags.PG_dirty) || (ctx.Flags & MfFlags.MF_MUST_KILL) != 0;
        k.KillProcs(tokill, forcekill, false, ctx.RawPfn, ctx.Flags, Units.PAGE_SHIFT);
        return (MfResult.MF_RECOVERED, "huge page");
    }

    public override int HandleRepoisonHugetlb(Kernel k, MfContext ctx)
    {
        if (!Applies(ctx.Folio)) return base.HandleRepoisonHugetlb(k, ctx);
        // the poisoned raw page itself was touched (or a new raw page): signal with the raw page's address, lsb 12
        var tokill = k.CollectProcs(ctx.Folio, ctx.RawPfn, ctx.Flags);
        foreach (var tk in tokill)
            if (tk.Task == k.Current || ctx.NewRawPage) k.KillProc(tk, ctx.RawPfn, ctx.Flags, Units.PAGE_SHIFT);
        k.ActionResult(ctx.RawPfn, ctx.NewRawPage ? "huge page" : "already poisoned page", ctx.NewRawPage ? MfResult.MF_RECOVERED : MfResult.MF_FAILED, alreadyPoisoned: true);
        return ctx.NewRawPage ? 0 : -Errno.EHWPOISON;
    }

    public override bool AllowFaultOnPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong va) => Applies(folio);

    /// <summary>filemap_offline_hwpoison_folio(): a poisoned folio leaving the file is isolated at once.</summary>
    public override void OnFolioRemovedFromFile(Kernel k, Inode inode, Folio folio)
    {
        if (!folio.IsHwpoison || (_requireFlag && !inode.KeepUeMapped)) return;
        k.DropMfRef(folio);
        if (k.Phys.Folios.ContainsKey(folio.Pfn) && folio.Flags.Has(PageFlags.HugetlbFreed))
        {
            // dissolve even if it backs a reservation: the proposal offlines it
            var h = k.HstateOf(folio);
            k.ForceDissolve(h, folio);
            k.Act($"offlined poisoned folio {Units.Hex(folio.Pfn)} on removal from {inode.Name}: pool -1, raw pages quarantined");
        }
    }

    public override void OnFileReleased(Kernel k, Inode inode)
    {
        if (!inode.IsHugetlb || inode.Unlinked) return; // unlinked inodes were just evicted, which offlined their folios
        foreach (var (idx, f) in inode.PageCache.Where(kv => kv.Value.IsHwpoison).ToList())
            k.RemoveFileFolio(inode, idx);
    }
}

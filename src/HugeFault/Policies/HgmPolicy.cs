using HugeFault.Mm;

namespace HugeFault.Policies;

/// <summary>
/// HugeTLB high-granularity mapping as intended — an extrapolation, not the posted series (that is
/// <see cref="HgmV2Policy"/>): HGM's cover letters (v1 Jan 2023, v2 Feb 2023) name 4 KiB unmapping on a memory
/// error as the goal but leave it out ("this isn't tackled in this patch series"); Jiaqi Yan drafted it on top of
/// HGM v2 ("[RFC PATCH v1 0/7] PAGE_SIZE Unmapping in Memory Failure Recovery for HugeTLB Pages", lore
/// 20230428004139.2899856-1-jiaqiyan@google.com, never merged). Here: on an error in raw page P, every shared mapping
/// of the folio is split only along the path to P (1 GiB: one PMD table of 511 × 2 MiB + one PTE table of
/// 511 × 4 KiB + the hwpoison entry) and only P becomes inaccessible; signals carry si_addr_lsb = 12.
/// MAP_PRIVATE mappings are not HGM-capable and keep mainline behaviour. With <c>full_split</c> the whole
/// folio is remapped with 4 KiB PTEs instead (the hgm-full-split variant).
/// MADV_SPLIT enables HGM on a shared VMA (EINVAL on private); MADV_COLLAPSE remaps at huge size except
/// over poisoned subpages. PMD sharing is not modelled, so "no PMD sharing for HGM VMAs" holds trivially.
/// </summary>
public sealed class HgmPolicy : RecoveryPolicyBase
{
    /// <summary>This policy's name, summary and provenance (see <see cref="PolicyDescriptor"/>).</summary>
    public static readonly PolicyDescriptor Descriptor = new("hgm",
        "HugeTLB high-granularity mapping as intended (an extrapolation: the posted series never unmapped 4 KiB): unmap only the bad 4 KiB in every mapper (si_addr_lsb = 12)",
        p => new HgmPolicy(p, fullSplit: false),
        Provenance: "extrapolation: HGM as intended (4 KiB unmapping left out of the posted v1/v2 series; drafted in Jiaqi Yan's 2023 RFC, never merged)",
        FallsBackWhen: "private (MAP_PRIVATE) mappings: mainline");

    /// <summary>The variant that remaps the whole folio at 4 KiB (what the minimal split saves).</summary>
    public static readonly PolicyDescriptor FullSplit = new("hgm-full-split",
        "HGM that splits the whole huge page to 4 KiB PTEs (what the minimal split saves)",
        p => new HgmPolicy(p, fullSplit: true),
        Provenance: "extrapolation: HGM as intended, remapping the whole folio at 4 KiB",
        FallsBackWhen: "private (MAP_PRIVATE) mappings: mainline");

    private readonly bool _fullSplit;

    public HgmPolicy(IReadOnlyDictionary<string, string> parameters, bool fullSplit) : base(parameters) => _fullSplit = fullSplit;

    public override string Name => _fullSplit ? FullSplit.Name : Descriptor.Name;

    public override (MfResult, string) HandleInUseHugetlb(Kernel k, MfContext ctx)
    {
        var folio = ctx.Folio;
        if (!folio.Mapped) return (k.MeHugePage(folio), "huge page");
        var tokill = k.CollectProcs(folio, ctx.RawPfn, ctx.Flags);
        bool anyWhole = false;
        foreach (var (vma, hva) in k.FolioMappings(folio, onlyMapped: true))
        {
            if (!vma.IsShared) { anyWhole = true; continue; }
            SplitAndPoison(k, vma, folio, hva, ctx.RawPfn);
        }
        if (anyWhole) k.UnmapPoisonedFolioWhole(folio); // private mappings: mainline
        bool forcekill = folio.Flags.Has(PageFlags.PG_dirty) || (ctx.Flags & MfFlags.MF_MUST_KILL) != 0;
        // per-task signal granularity: 4 KiB where that task's mapping is now high-granularity
        foreach (var tk in tokill)
            if (forcekill) k.KillProc(tk, ctx.RawPfn, ctx.Flags, tk.Vma.IsShared ? Units.PAGE_SHIFT : null);
        if (anyWhole && !folio.Mapped && folio.IsAnon) return (k.MeHugePage(folio), "huge page");
        return (MfResult.MF_RECOVERED, "huge page");
    }

    private void SplitAndPoison(Kernel k, Vma vma, Folio folio, ulong hva, ulong rawPfn)
    {
        vma.Flags |= VmFlags.VM_HUGETLB_HGM;
        ulong va = hva + ((rawPfn - folio.Pfn) << Units.PAGE_SHIFT);
        if (_fullSplit) { k.SplitRangeTo4K(vma.Mm, hva, hva + folio.Size); k.Act($"split all of {Units.Size(folio.Size)} at {Units.Hex(hva)} (mm {vma.Mm.Id}) to 4K"); }
        k.PoisonSubpageMapping(vma.Mm, va, rawPfn);
        k.Act($"mm {vma.Mm.Id}: 4K at {vma.Name}+{Units.Hex(va - vma.NameBase)} -> hwpoison entry; rest of the {Units.Size(folio.Size)} stays mapped");
    }

    public override int HandleRepoisonHugetlb(Kernel k, MfContext ctx)
    {
        var folio = ctx.Folio;
        // a raw page already isolated: the access hit its hwpoison entry through the hardware path
        bool isNew = folio.RawHwp.Count > 0 && folio.RawHwp[^1] == ctx.RawPfn && ctx.FirstPoison == false;
        var tokill = k.CollectProcs(folio, ctx.RawPfn, ctx.Flags);
        int split = 0;
        foreach (var (vma, hva) in k.FolioMappings(folio, onlyMapped: true))
        {
            if (!vma.IsShared) continue;
            ulong va = hva + ((ctx.RawPfn - folio.Pfn) << Units.PAGE_SHIFT);
            var e = k.Walk(vma.Mm, va).Entry;
            if (e.IsHwpoison) continue;
            SplitAndPoison(k, vma, folio, hva, ctx.RawPfn);
            split++;
        }
        foreach (var tk in tokill)
            if (split > 0 || (tk.Task == k.Current && ctx.ActionRequired)) k.KillProc(tk, ctx.RawPfn, ctx.Flags, Units.PAGE_SHIFT);
        k.ActionResult(ctx.RawPfn, split > 0 ? "huge page" : "already poisoned page", split > 0 ? MfResult.MF_RECOVERED : MfResult.MF_FAILED, alreadyPoisoned: true);
        return split > 0 || isNew ? 0 : -Errno.EHWPOISON;
    }

    public override bool AllowFaultOnPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong va) => vma.IsShared;

    public override bool MapPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong hva, bool writable)
    {
        vma.Flags |= VmFlags.VM_HUGETLB_HGM;
        if (_fullSplit)
        {
            for (ulong a = hva; a < hva + folio.Size; a += Units.PAGE_SIZE)
            {
                ulong pfn = folio.Pfn + ((a - hva) >> Units.PAGE_SHIFT);
                var w = k.Walk(vma.Mm, a);
                if (!w.Entry.IsNone && w.Shift == Units.PAGE_SHIFT) continue;
                if (folio.RawHwp.Contains(pfn)) { k.PoisonSubpageMapping(vma.Mm, a, pfn); continue; }
                var r = k.SplitToShift(vma.Mm, a, Units.PAGE_SHIFT);
                if (r is null) return false;
                k.InstallLeaf(r.Value, folio, pfn, writable, writable);
            }
            return true;
        }
        return k.MapAroundPoison(vma, folio, hva, writable);
    }

    public override SysResult? Madvise(Kernel k, TaskStruct t, ulong start, ulong end, int advice) => advice switch
    {
        Mman.MADV_SPLIT => k.EnableHugetlbHgm(t, start, end),
        // the intended design keeps the 4 KiB hole of a poisoned folio and says so
        Mman.MADV_COLLAPSE => k.HugetlbCollapse(t, start, end, poisonedFails: true),
        _ => null,
    };
}

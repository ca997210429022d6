using HugeFault.Mm;

namespace HugeFault.Policies;

/// <summary>
/// Option 2 of the design debate: convert the VMA on the fly. On an error in an in-use hugetlb folio, the
/// folio leaves the hugetlb pool and becomes an ordinary large folio (its data stays in place), and in every
/// process the VMA range it backs is split off into a VMA that is no longer VM_HUGETLB, mapped with 4 KiB
/// PTEs; the bad 4 KiB gets a hwpoison entry and signals carry si_addr_lsb = 12. The trace shows each VMA
/// losing VM_HUGETLB. New mappers of the file after the conversion still see a poisoned hugetlb range
/// (they get mainline behaviour): a limit of the design, which has no clean answer for them.
/// </summary>
public sealed class VmaConvertPolicy : RecoveryPolicyBase
{
    /// <summary>This policy's name, summary and provenance (see <see cref="PolicyDescriptor"/>).</summary>
    public static readonly PolicyDescriptor Descriptor = new("vma-convert", "convert the VMA range away from hugetlb; 4 KiB PTEs; bad 4 KiB poisoned",
        p => new VmaConvertPolicy(p), FallsBackWhen: "new mappers after the conversion: mainline");

    public VmaConvertPolicy(IReadOnlyDictionary<string, string> parameters) : base(parameters) { }
    public override string Name => Descriptor.Name;

    public override (MfResult, string) HandleInUseHugetlb(Kernel k, MfContext ctx)
    {
        var folio = ctx.Folio;
        if (!folio.Mapped) return base.HandleInUseHugetlb(k, ctx);
        var tokill = k.CollectProcs(folio, ctx.RawPfn, ctx.Flags);
        var h = k.HstateOf(folio);
        // every VMA of the file (or anon_vma) covering the folio is converted, faulted in or not
        var maps = k.FolioMappings(folio, onlyMapped: false);
        var mapped = maps.Where(m => k.IsMappedIn(folio, m.Vma)).ToList();
        // the folio leaves hugetlb: an ordinary large folio mapped by PTEs (like a split THP)
        folio.Flags = folio.Flags.Without(PageFlags.PG_hugetlb);
        h.nr_huge_pages--;
        if (h.surplus_huge_pages > 0) h.surplus_huge_pages--; // __remove_hugetlb_folio(adjust_surplus): an in-use page the pool shrank under counted as surplus
        k.Stats.HugePagesConverted++;
        k.Act($"folio {Units.Hex(folio.Pfn)} ({Units.Size(folio.Size)}) leaves the hugetlb pool and becomes an ordinary folio");
        foreach (var (vma, hva) in maps)
        {
            var conv = k.SplitVmaRange(vma, hva, hva + folio.Size);
            // the range stops being hugetlb: its unconsumed private reservations go back now (a non-hugetlb VMA never
            // consumes nor returns them)
            k.ReleasePrivateReservations(conv, h, conv.Start, conv.End);
            conv.Flags &= ~(VmFlags.VM_HUGETLB | VmFlags.VM_HUGETLB_HGM);
            conv.Hstate = null;
            if (mapped.Contains((vma, hva))) k.SplitRangeTo4K(vma.Mm, hva, hva + folio.Size);
            k.Act($"mm {vma.Mm.Id}: VMA {Units.Hex(conv.Start)}-{Units.Hex(conv.End)} ({conv.Name}) is no longer MAP_HUGETLB: 4 KiB PTEs over the old {Units.Size(folio.Size)} page");
        }
        foreach (var (vma, hva) in mapped)
            k.PoisonSubpageMapping(vma.Mm, hva + ((ctx.RawPfn - folio.Pfn) << Units.PAGE_SHIFT), ctx.RawPfn);
        bool forcekill = folio.Flags.Has(PageFlags.PG_dirty) || (ctx.Flags & MfFlags.MF_MUST_KILL) != 0;
        k.KillProcs(tokill, forcekill, false, ctx.RawPfn, ctx.Flags, Units.PAGE_SHIFT);
        // an ordinary folio from now on: normal refcounting frees it (quarantining its raw pages) with its last user
        k.DropMfRef(folio);
        return (MfResult.MF_RECOVERED, "huge page (VMA converted)");
    }

    /// <summary>
    /// memory_failure() on a hugetlb folio already poisoned (try_memory_failure_hugetlb() after hugetlb_update_hwpoison()
    /// said MF_HUGETLB_FOLIO_PRE_POISONED or MF_HUGETLB_PAGE_PRE_POISONED). A range converted earlier stays converted: when the file's
    /// folio there was punched out and a new one faulted or fallocated in, the converted VMA maps the new (hugetlb) folio
    /// with 4 KiB PTEs, poisoned or not, as any 4 KiB mapping maps the clean pages of a folio. Its newly bad raw page gets
    /// a hwpoison entry in those mappings, as on the first error; hugetlb mappings of the folio are mainline's (it was
    /// unmapped from them when first poisoned). Found by the property test (seed 7Ow171x2u9oI, iteration 99,431 of 10^6);
    /// scenarios/regressions/vma-convert-repoison-after-punch.yaml.
    /// </summary>
    public override int HandleRepoisonHugetlb(Kernel k, MfContext ctx)
    {
        var folio = ctx.Folio;
        var converted = new List<(Vma Vma, ulong Va)>();
        foreach (var (vma, hva) in k.FolioMappings(folio, onlyMapped: true))
        {
            if ((vma.Flags & VmFlags.VM_HUGETLB) != 0) continue;
            ulong va = hva + ((ctx.RawPfn - folio.Pfn) << Units.PAGE_SHIFT);
            var e = k.Walk(vma.Mm, va).Entry;
            if (e.Present && !e.IsHwpoison) converted.Add((vma, va));
        }
        if (converted.Count == 0) return base.HandleRepoisonHugetlb(k, ctx);
        var tokill = k.CollectProcs(folio, ctx.RawPfn, ctx.Flags);
        foreach (var (vma, va) in converted)
        {
            k.PoisonSubpageMapping(vma.Mm, va, ctx.RawPfn);
            k.Act($"mm {vma.Mm.Id}: 4K at {Units.Hex(va)} of the converted VMA {Units.Hex(vma.Start)}-{Units.Hex(vma.End)} -> hwpoison entry");
        }
        bool forcekill = folio.Flags.Has(PageFlags.PG_dirty) || (ctx.Flags & MfFlags.MF_MUST_KILL) != 0;
        k.KillProcs(tokill, forcekill, false, ctx.RawPfn, ctx.Flags, Units.PAGE_SHIFT);
        k.ActionResult(ctx.RawPfn, "huge page", MfResult.MF_RECOVERED, alreadyPoisoned: true);
        return 0;
    }
}

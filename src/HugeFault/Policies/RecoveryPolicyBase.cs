using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault.Policies;

/// <summary>Mainline behaviour for every hook; a policy overrides only where its design differs.</summary>
public abstract class RecoveryPolicyBase : IRecoveryPolicy
{
    protected RecoveryPolicyBase(IReadOnlyDictionary<string, string> parameters)
    {
        Parameters = parameters;
        Report = parameters.TryGetValue("report", out var r) ? ParseReport(r) : ReportGranularity.Native;
    }

    public abstract string Name { get; }
    public IReadOnlyDictionary<string, string> Parameters { get; }
    public ReportGranularity Report { get; }
    public virtual bool SupportsKeepUeMapped => false;

    public static ReportGranularity ParseReport(string s) => s switch
    {
        "native" => ReportGranularity.Native,
        "hugepage" or "huge" => ReportGranularity.HugePage,
        "page" or "4k" or "4K" => ReportGranularity.Page,
        "cacheline" or "line" => ReportGranularity.Cacheline,
        _ => throw new ArgumentException($"unknown report granularity '{s}' (use native, hugepage, page or cacheline)"),
    };

    /// <summary>Mainline: hwpoison_user_mappings() unmaps the whole folio everywhere, kills, then me_huge_page().</summary>
    public virtual (MfResult, string) HandleInUseHugetlb(Kernel k, MfContext ctx)
    {
        var folio = ctx.Folio;
        if (!HwpoisonUserMappingsWhole(k, ctx)) return (MfResult.MF_FAILED, "unmapping failed page");
        return (k.MeHugePage(folio), "huge page");
    }

    public virtual (MfResult, string)? HandleFreeHugetlb(Kernel k, MfContext ctx) => null;

    /// <summary>hwpoison_user_mappings() at folio granularity. False if unmapping failed.</summary>
    protected static bool HwpoisonUserMappingsWhole(Kernel k, MfContext ctx)
    {
        var folio = ctx.Folio;
        if (!folio.Mapped) return true;
        var tokill = k.CollectProcs(folio, ctx.RawPfn, ctx.Flags);
        k.UnmapPoisonedFolioWhole(folio);
        bool fail = folio.Mapped;
        bool forcekill = folio.Flags.Has(PageFlags.PG_dirty) || (ctx.Flags & MfFlags.MF_MUST_KILL) != 0 || fail;
        k.KillProcs(tokill, forcekill, fail, ctx.RawPfn, ctx.Flags);
        return !fail;
    }

    /// <summary>Mainline step C: kill_accessing_process() reports the start of the huge mapping.</summary>
    public virtual int HandleRepoisonHugetlb(Kernel k, MfContext ctx)
    {
        int r = -Errno.EHWPOISON;
        if (ctx.ActionRequired && k.Current is { } cur) r = k.KillAccessingProcess(cur, ctx.Folio.Pfn, (int)ctx.Folio.NrPages, ctx.Flags);
        // 6.12: a new raw page of a poisoned folio logs "huge page: Failed", the same raw page "already poisoned page: Failed"; 6.1: "already hardware poisoned"
        k.LogHugetlbAlreadyPoisoned(ctx.RawPfn, ctx.NewRawPage);
        return r == 0 ? -Errno.EHWPOISON : r;
    }

    /// <summary>hugetlb_no_page() is allowed to map a poisoned folio: how (default: whole, at huge size).</summary>
    public virtual bool MapPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong hva, bool writable) => false;

    public virtual bool AllowFaultOnPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong va) => false;
    public virtual int NoPageHwpoisonShift(Kernel k, Vma vma, Folio folio, ulong va) => vma.Hstate!.Shift;
    /// <summary>The entry's own size: the hstate shift for a hugetlb-level entry, 12 for a 4 KiB one (HGM-style mappings).</summary>
    public virtual int FaultShift(Kernel k, Vma vma, PteRef entry) => Math.Min(vma.Hstate!.Shift, Math.Max(Units.PAGE_SHIFT, entry.Shift));

    public virtual (ulong, int) AdjustReport(Kernel k, TaskStruct t, ulong addr, int lsb) => Report switch
    {
        ReportGranularity.Native => (addr, lsb),
        ReportGranularity.HugePage => (addr, Math.Max(lsb, HugeShiftAt(k, t, addr) ?? lsb)),
        ReportGranularity.Page => (addr, Math.Min(lsb, Units.PAGE_SHIFT)),
        _ => (addr, Math.Min(lsb, Units.CACHELINE_SHIFT)),
    };

    private static int? HugeShiftAt(Kernel k, TaskStruct t, ulong addr) => t.Mm.FindVma(addr)?.Hstate?.Shift;

    public virtual SysResult? Madvise(Kernel k, TaskStruct t, ulong start, ulong end, int advice) => null;
    public virtual void OnFolioRemovedFromFile(Kernel k, Inode inode, Folio folio) { }
    public virtual void OnFileReleased(Kernel k, Inode inode) { }
}

using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault.Policies;

/// <summary>
/// What memory_failure() and the hugetlb fault paths do with a poisoned hugetlb folio: the one place where
/// the designs of design-debate.md differ. Everything else (pools, faults, rmap, signals) is shared kernel code.
/// </summary>
public interface IRecoveryPolicy
{
    /// <summary>The name used in scenarios and on the command line.</summary>
    string Name { get; }

    /// <summary>memory_failure() on an in-use hugetlb folio whose PG_hwpoison and raw_hwp record were just set. Returns the result and the action_result() page type.</summary>
    (MfResult Result, string Type) HandleInUseHugetlb(Kernel k, MfContext ctx);

    /// <summary>memory_failure() on a free hugetlb folio (just marked): a policy may deal with it itself; null = mainline (dissolve).</summary>
    (MfResult Result, string Type)? HandleFreeHugetlb(Kernel k, MfContext ctx);

    /// <summary>memory_failure() on a hugetlb folio already poisoned (another or the same raw page). Returns memory_failure()'s value.</summary>
    int HandleRepoisonHugetlb(Kernel k, MfContext ctx);

    /// <summary>hugetlb_no_page() found a PG_hwpoison folio in the page cache: may it be mapped anyway?</summary>
    bool AllowFaultOnPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong va);

    /// <summary>Maps a poisoned folio that AllowFaultOnPoisonedFolio() admitted; false = map it whole at huge size.</summary>
    bool MapPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong hva, bool writable);

    /// <summary>si_addr_lsb when hugetlb_no_page() refuses a poisoned folio.</summary>
    int NoPageHwpoisonShift(Kernel k, Vma vma, Folio folio, ulong va);

    /// <summary>si_addr_lsb when a hugetlb fault meets a hwpoison entry or poison marker.</summary>
    int FaultShift(Kernel k, Vma vma, PteRef entry);

    /// <summary>The report-precision parameter: rewrite (si_addr, si_addr_lsb) of a BUS_MCEERR_* signal.</summary>
    (ulong Addr, int Lsb) AdjustReport(Kernel k, TaskStruct t, ulong addr, int lsb);

    /// <summary>madvise() advice the policy adds (HGM: MADV_SPLIT/MADV_COLLAPSE); null = EINVAL.</summary>
    SysResult? Madvise(Kernel k, TaskStruct t, ulong start, ulong end, int advice);

    /// <summary>A folio left a file's page cache (truncate/punch).</summary>
    void OnFolioRemovedFromFile(Kernel k, Inode inode, Folio folio);

    /// <summary>The last open file description of an inode was closed.</summary>
    void OnFileReleased(Kernel k, Inode inode);

    /// <summary>memfd_create(MFD_MF_KEEP_UE_MAPPED) is accepted.</summary>
    bool SupportsKeepUeMapped { get; }
}

/// <summary>How precisely an error is reported to userspace (si_addr_lsb).</summary>
public enum ReportGranularity
{
    /// <summary>What the kernel path computes (mainline: the huge page shift).</summary>
    Native,
    /// <summary>The huge page (si_addr_lsb = 21 or 30).</summary>
    HugePage,
    /// <summary>4 KiB (si_addr_lsb = 12).</summary>
    Page,
    /// <summary>64-byte cacheline (si_addr_lsb = 6).</summary>
    Cacheline,
}

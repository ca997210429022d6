namespace HugeFault;

// Behaviour that differs between the kernels the oracle checks (Debian's 6.1 and 6.12): one switch per difference,
// each naming the upstream change it models and the scenario that shows it on both kernels. KernelConfig.KernelVersion
// selects the kernel; the oracle sets it to the kernel it compares with.
public sealed partial class Kernel
{
    private bool AtLeast(int major, int minor) => Config.KernelVersion >= new Version(major, minor);

    /// <summary>
    /// madvise_inject_error() passes MF_ACTION_REQUIRED since "mm/madvise: add MF_ACTION_REQUIRED to madvise(MADV_HWPOISON)"
    /// (Jane Chu, v6.11, lore 20240524215306.2705454-3-jane.chu@oracle.com): the injector is "current" and gets a forced
    /// BUS_MCEERR_AR during the call. Before, it is treated like any other mapper (an AO only if it is early-kill).
    /// Seen: 05-inuse-shared-injector-2m (6.1: no signal; 6.12: AR), 07b-early-kill-sysctl (6.1: AO to A).
    /// </summary>
    internal MfFlags MadviseHwpoisonFlags =>
        (AtLeast(6, 11) ? MfFlags.MF_ACTION_REQUIRED : MfFlags.None) | MfFlags.MF_COUNT_INCREASED | MfFlags.MF_SW_SIMULATED;

    /// <summary>
    /// collect_procs() reports the raw page's address since "mm/memory-failure: pass the folio and the page to
    /// collect_procs()" (Matthew Wilcox, v6.8, lore 20231218135837.3310403-1-willy@infradead.org); before, the head
    /// page's, so si_addr is the start of the huge page in each VMA. Seen: 07-early-kill (6.1: b; 6.12: b+0x12345000).
    /// </summary>
    internal bool ReportsRawPageAddress => AtLeast(6, 8);

    /// <summary>
    /// hugetlbfs_read_iter() of a poisoned folio: since "hugetlbfs: improve read HWPOISON hugepage" (Jiaqi Yan, v6.6,
    /// commit 38c1ddbde6c6) bytes up to the first poisoned raw page are returned. Before, the call fails with -EIO at that
    /// folio even when earlier folios were copied (retval = -EIO replaces the count), and ki_pos still advances to the
    /// folio. Seen: 12-historical-read-eio on 6.1 (pread of 3M over a poisoned second folio: -1 EIO).
    /// </summary>
    internal bool ReadsAroundRawHwpoison => AtLeast(6, 6);

    /// <summary>
    /// UFFD_FEATURE_POISON / UFFDIO_POISON exist since "mm: userfaultfd: add new UFFDIO_POISON ioctl" (Axel Rasmussen,
    /// v6.6, commit fc71884a5f59); UFFDIO_API with an unknown feature bit fails with EINVAL. Seen: 21-uffdio-poison on 6.1.
    /// </summary>
    internal ulong UffdFeaturesKnown => AtLeast(6, 6) ? ulong.MaxValue : ~Mm.Userfaultfd.UFFD_FEATURE_POISON;

    /// <summary>
    /// A second memory_failure() on a poisoned hugetlb folio (a new raw page, or the same one) ends in action_result()
    /// since "mm/memory-failure: improve memory failure action_result messages" (Jane Chu, v6.11, same series as
    /// <see cref="MadviseHwpoisonFlags"/>): "recovery action for huge page: Failed" / "... already poisoned page: Failed".
    /// Before, it prints "Memory failure: PFN: already hardware poisoned". Seen: 14, 15, 16 via corrupt-pfn on 6.1.
    /// </summary>
    internal void LogHugetlbAlreadyPoisoned(ulong pfn, bool newRawPage)
    {
        if (AtLeast(6, 11)) ActionResult(pfn, newRawPage ? "huge page" : "already poisoned page", MfResult.MF_FAILED, alreadyPoisoned: true);
        else Log($"Memory failure: {Mm.Units.Hex(pfn)}: already hardware poisoned");
    }

    /// <summary>
    /// __page_handle_poison() after a successful dissolve: take_page_off_buddy() of the raw page. On 6.1 a dissolved
    /// 1 GiB folio is freed page by page (free_contig_range()), free_pages_prepare() keeps the hwpoisoned order-0 page out
    /// of the buddy allocator, take_page_off_buddy() fails, and memory_failure() reports MF_FAILED (-EBUSY, "free huge
    /// page: Failed") although the folio left the pool; a 2 MiB folio is freed as one block and is taken off. 6.12 reports
    /// Recovered for both. Seen: 03-free-page-poison, 18-anon-private-hugetlb (6.1: EBUSY, pool −1). The upstream change
    /// between the two was not pinned down (not the 6.1-stable backport 8cf360b9d6a8, which 6.1.0-57 has).
    /// </summary>
    internal bool TakeOffBuddyFailsAfterDissolve(Mm.Folio folio) => !AtLeast(6, 12) && folio.Order == H1G.Order;

    /// <summary>
    /// unpoison_memory() messages: 6.12 prints "Unpoison: PFN: page was already unpoisoned" (pfn first, lower case);
    /// 6.1 prints "Unpoison: Page was already unpoisoned PFN" (the 6.1 wording; the rewording commit was not pinned
    /// down). Seen: 20b-unpoison-simulated on both kernels.
    /// </summary>
    internal void UnpoisonLog(ulong pfn, string what)
    {
        string p = Mm.Units.Hex(pfn);
        if (AtLeast(6, 12)) { Log($"Unpoison: {p}: {what}"); return; }
        string w = what.StartsWith("the ", StringComparison.Ordinal) ? what : char.ToUpperInvariant(what[0]) + what[1..];
        Log($"Unpoison: {w} {p}");
    }

    /// <summary>
    /// vm.enable_soft_offline exists since "mm/memory-failure: userspace controls soft-offlining pages" (Jiaqi Yan, v6.11):
    /// with 0, MADV_SOFT_OFFLINE fails with EOPNOTSUPP and logs once "disabled by /proc/sys/vm/enable_soft_offline".
    /// Before, the sysctl file does not exist. Seen: peers/selftests-mm/hugetlb-soft-offline-*.
    /// </summary>
    internal bool HasEnableSoftOfflineSysctl => AtLeast(6, 11);

    /// <summary>
    /// soft_offline_page()/soft_offline_in_use_page() messages carry the "Soft offline: " prefix since
    /// "mm/memory-failure: refactor log format in soft offline code" (Jiaqi Yan, v6.11, lore
    /// 20240624163348.1751454-2-jiaqiyan@google.com, the same series as <see cref="HasEnableSoftOfflineSysctl"/>);
    /// before, each message spells "soft offline: " itself. Seen: 23e-soft-offline-1g-no-spare (6.1: "soft offline: PFN:
    /// hugepage migration failed -12", 6.12: "Soft offline: ...").
    /// </summary>
    internal void SoftOfflineLog(string what) => Log((AtLeast(6, 11) ? "Soft offline: " : "soft offline: ") + what);

    /// <summary>
    /// soft_offline_page() on a page that is already HWPoison: "Soft offline: PFN: page already poisoned" since the
    /// same commit as <see cref="SoftOfflineLog"/>; before, "soft_offline_page: PFN page already poisoned" (__func__).
    /// </summary>
    internal void SoftOfflineAlreadyPoisonedLog(ulong pfn)
    {
        if (AtLeast(6, 11)) SoftOfflineLog($"{Mm.Units.Hex(pfn)}: page already poisoned");
        else Log($"soft_offline_page: {Mm.Units.Hex(pfn)} page already poisoned");
    }
}

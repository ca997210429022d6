using HugeFault.Mm;

namespace HugeFault.Fleet;

/// <summary>The recovery designs of design-debate.md as the fleet simulator knows them (names as in <see cref="FleetPolicies.Names"/>).</summary>
public enum FleetPolicy : byte
{
    Mainline = 0,
    Hgm = 1,
    HgmFullSplit = 2,
    VmaConvert = 3,
    UserspaceMigrate = 4,
    Repair = 5,
    CopyAround = 6,
    KeepMapped = 7,
}

/// <summary>How memory is used in one 1 GiB physical frame when a UE event reaches it.</summary>
public enum FrameUse : byte
{
    /// <summary>A free page of the 1 GiB hugetlb pool.</summary>
    FreeHuge = 0,
    /// <summary>A hugetlb page mapped (1 GiB entry) by a VM's memfd, never poisoned.</summary>
    MappedHuge = 1,
}

/// <summary>What happens to the 1 GiB frame.</summary>
public enum FrameFate : byte
{
    /// <summary>Whole page poisoned and unmapped; 1 GiB stranded until the owner frees it, then dissolved (4 KiB × raw errors stay quarantined).</summary>
    PoisonWhole = 0,
    /// <summary>Only the 4 KiB pages holding errors are unmapped/quarantined; the rest stays mapped by the owner (HGM-style).</summary>
    PoisonSubpages = 1,
    /// <summary>The page is dissolved now into 4 KiB pages; the bad ones stay quarantined and the frame leaves the 1 GiB pool.</summary>
    Dissolve = 2,
    /// <summary>The poisoned line was rewritten; nothing stranded, the page stays a healthy 1 GiB page.</summary>
    Repaired = 3,
    /// <summary>The good data moved to another 1 GiB page (copy-around); the old page is dissolved around its bad 4 KiB pages.</summary>
    CopiedAway = 4,
    /// <summary>The owner's data moved to 4 KiB tmpfs pages (userspace-migrate); the old page is dissolved.</summary>
    MovedTo4K = 5,
}

/// <summary>
/// The kernel-level effect of one UE event on one 1 GiB hugetlb frame: what is inaccessible to the mapper, which signal
/// it receives, the frame's fate and the memory costs. This is the fast path's per-policy table; the test
/// <c>FleetKernelCrossCheckTests</c> replays sampled events on the kernel model (HugeFault.Kernel) and compares.
/// </summary>
/// <param name="Fate">What happens to the frame.</param>
/// <param name="InaccessibleBytes">Bytes of the mapping the owner can no longer touch (1 GiB, 4 KiB per bad page, or 0).</param>
/// <param name="SignalLsb">si_addr_lsb of the BUS_MCEERR_AR sent to a consuming mapper (30, 12, 6) or 0 when no signal.</param>
/// <param name="LeavesPool">The frame stops being a 1 GiB hugetlb page now.</param>
/// <param name="PageTableBytesPerMapping">Extra host page-table memory per mapping of the page.</param>
/// <param name="ExtraPeakBytes">Extra memory needed during recovery (a copy target).</param>
/// <param name="UsedFallback">The policy could not act and its fallback decided.</param>
public readonly record struct KernelEffect(
    FrameFate Fate,
    long InaccessibleBytes,
    int SignalLsb,
    bool LeavesPool,
    long PageTableBytesPerMapping,
    long ExtraPeakBytes,
    bool UsedFallback);

/// <summary>Names, parsing and the fast per-event outcome function of every fleet policy.</summary>
public static class FleetPolicies
{
    /// <summary>All policies, in <see cref="FleetPolicy"/> order.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["mainline", "hgm", "hgm-full-split", "vma-convert", "userspace-migrate", "repair", "copy-around", "keep-mapped"];

    /// <summary>Number of policies.</summary>
    public const int Count = 8;

    public const long GiB = 1L << 30;
    public const long PageBytes = 4096;
    public const long PagesPerGiB = GiB / PageBytes;

    /// <summary>The command-line name.</summary>
    public static string Name(this FleetPolicy p) => Names[(int)p];

    /// <summary>Parses a name (exact, lower case).</summary>
    public static bool TryParse(string name, out FleetPolicy policy)
    {
        for (int i = 0; i < Count; i++)
            if (Names[i] == name) { policy = (FleetPolicy)i; return true; }
        policy = FleetPolicy.Mainline;
        return false;
    }

    /// <summary>
    /// The kernel-level effect of a UE event in a 1 GiB hugetlb frame under <paramref name="policy"/>. Allocation-free.
    /// </summary>
    /// <param name="policy">The design.</param>
    /// <param name="use">Free pool page or mapped by a VM.</param>
    /// <param name="kind">Permanent, transient or deposited poison.</param>
    /// <param name="badPages">Distinct 4 KiB pages of the frame holding errors in this event.</param>
    /// <param name="repairAccepted">The owner accepts an in-place repair (an enlightened guest; always true for a free page).</param>
    /// <param name="freeHugePage">A free 1 GiB page is available (copy-around's target).</param>
    /// <param name="repairFallback">Policy used by repair when it cannot repair.</param>
    /// <param name="copyFallback">Policy used by copy-around without a free page.</param>
    public static KernelEffect Resolve(FleetPolicy policy, FrameUse use, PoisonKind kind, long badPages, bool repairAccepted,
        bool freeHugePage, FleetPolicy repairFallback = FleetPolicy.Mainline, FleetPolicy copyFallback = FleetPolicy.Mainline)
    {
        bool fallback = false;
        if (policy == FleetPolicy.Repair)
        {
            if (kind != PoisonKind.Permanent && (use == FrameUse.FreeHuge || repairAccepted))
                return new(FrameFate.Repaired, 0, use == FrameUse.MappedHuge ? 6 : 0, false, 0, 0, false);
            policy = repairFallback;
            fallback = true;
        }
        // memory_failure() on a free hugetlb page: dissolve_free_hugetlb_folio() + take_page_off_buddy(), for every design.
        if (use == FrameUse.FreeHuge)
            return new(FrameFate.Dissolve, badPages * PageBytes, 0, true, 0, 0, fallback);
        if (policy == FleetPolicy.CopyAround)
        {
            if (freeHugePage) return new(FrameFate.CopiedAway, badPages * PageBytes, 12, true, 0, GiB, false);
            policy = copyFallback;
            fallback = true;
        }
        return policy switch
        {
            FleetPolicy.Mainline => new(FrameFate.PoisonWhole, GiB, 30, false, 0, 0, fallback),
            // HGM maps the 1 GiB page with one PMD table (512 × 2 MiB) and one PTE table for the 2 MiB holding the error.
            FleetPolicy.Hgm => new(FrameFate.PoisonSubpages, badPages * PageBytes, 12, false, 2 * PageBytes, 0, fallback),
            // Full split: 512 PTE tables (2 MiB) plus the PMD table.
            FleetPolicy.HgmFullSplit => new(FrameFate.PoisonSubpages, badPages * PageBytes, 12, false, 2 * 1024 * 1024 + PageBytes, 0, fallback),
            // The VMA stops being hugetlb: remapped with 4 KiB PTEs like a full split.
            FleetPolicy.VmaConvert => new(FrameFate.PoisonSubpages, badPages * PageBytes, 12, true, 2 * 1024 * 1024 + PageBytes, 0, fallback),
            // Userspace reads the good pages out into a 4 KiB tmpfs mapping: 1 GiB extra during the copy, 4 KiB page tables after.
            FleetPolicy.UserspaceMigrate => new(FrameFate.MovedTo4K, badPages * PageBytes, 30, true, 2 * 1024 * 1024 + PageBytes, GiB, fallback),
            // MFD_MF_KEEP_UE_MAPPED: the page stays mapped; only the bad 4 KiB is lost to the owner.
            FleetPolicy.KeepMapped => new(FrameFate.PoisonSubpages, badPages * PageBytes, 12, false, 0, 0, fallback),
            _ => new(FrameFate.PoisonWhole, GiB, 30, false, 0, 0, true),
        };
    }
}

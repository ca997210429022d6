namespace HugeFault.Mm;

/// <summary>
/// One x86-64 page-table entry at any level (PGD/PUD/PMD/PTE), packed as the hardware does for present
/// entries; non-present entries carry a software "swap" type as Linux does for hwpoison and
/// PTE markers (include/linux/swapops.h).
/// <code>
///  63   56 55  52 51                                12 11   8 7  6 5 4 3 2 1 0
/// [ unused][ swp][              pfn                  ][     ]PS  D A     U W P
/// P=1: present. PS=1 at PUD/PMD level: a leaf (1 GiB / 2 MiB page), else a pointer to the next table.
/// P=0 and raw != 0: a non-present leaf whose swp field says what it is:
///   1 = SWP_HWPOISON (hwpoison swap entry, pfn kept: make_hwpoison_entry()),
///   2 = PTE_MARKER_POISONED (UFFDIO_POISON, no pfn),
///   3 = PTE_MARKER_UFFD_WP (UFFDIO_WRITEPROTECT of an empty entry of a file-backed range).
/// Bit 10 of a present entry (_PAGE_BIT_SOFTW2) is _PAGE_UFFD_WP, the uffd-wp bit.
/// </code>
/// </summary>
public readonly record struct Pte(ulong Raw)
{
    public const ulong _PAGE_PRESENT = 1UL << 0;
    public const ulong _PAGE_RW = 1UL << 1;
    public const ulong _PAGE_USER = 1UL << 2;
    public const ulong _PAGE_ACCESSED = 1UL << 5;
    public const ulong _PAGE_DIRTY = 1UL << 6;
    public const ulong _PAGE_PSE = 1UL << 7;
    public const ulong _PAGE_UFFD_WP = 1UL << 10;
    private const int PfnShift = Units.PAGE_SHIFT;
    private const ulong PfnMask = ((1UL << 52) - 1) & ~((1UL << PfnShift) - 1);
    private const int SwpShift = 52;
    private const ulong SwpMask = 0xFUL << SwpShift;
    public const ulong SWP_HWPOISON = 1;
    public const ulong PTE_MARKER_POISONED = 2;
    public const ulong PTE_MARKER_UFFD_WP = 3;

    public static readonly Pte None = new(0);

    public bool IsNone => Raw == 0;
    public bool Present => (Raw & _PAGE_PRESENT) != 0;
    public bool Huge => (Raw & _PAGE_PSE) != 0;
    public bool Writable => (Raw & _PAGE_RW) != 0;
    public ulong Pfn => (Raw & PfnMask) >> PfnShift;
    public ulong SwapType => Present ? 0 : (Raw & SwpMask) >> SwpShift;
    public bool IsHwpoison => !Present && SwapType == SWP_HWPOISON;
    public bool IsPoisonMarker => !Present && SwapType == PTE_MARKER_POISONED;
    public bool IsUffdWpMarker => !Present && SwapType == PTE_MARKER_UFFD_WP;
    /// <summary>huge_pte_uffd_wp()/pte_uffd_wp(): the present entry is write-protected by userfaultfd.</summary>
    public bool UffdWp => Present && (Raw & _PAGE_UFFD_WP) != 0;

    /// <summary>A leaf mapping a page: PTE level always, PUD/PMD level with PS set.</summary>
    public static Pte Leaf(ulong pfn, bool huge, bool writable) =>
        new(_PAGE_PRESENT | _PAGE_USER | (writable ? _PAGE_RW : 0) | (huge ? _PAGE_PSE : 0) | (pfn << PfnShift));
    /// <summary>A pointer to a lower-level table.</summary>
    public static Pte Table(ulong tablePfn) => new(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | (tablePfn << PfnShift));
    /// <summary>make_hwpoison_entry(): remembers the pfn so kill_accessing_process() can match it.</summary>
    public static Pte Hwpoison(ulong pfn) => new((SWP_HWPOISON << SwpShift) | (pfn << PfnShift));
    /// <summary>make_pte_marker(PTE_MARKER_POISONED): installed by UFFDIO_POISON, no page behind it.</summary>
    public static Pte PoisonMarker() => new(PTE_MARKER_POISONED << SwpShift);
    public Pte WithWritable(bool w) => new(w ? Raw | _PAGE_RW : Raw & ~_PAGE_RW);
    /// <summary>Protect: set the uffd-wp bit and clear write (huge_pte_mkuffd_wp(huge_pte_wrprotect())); unprotect: clear the bit only.</summary>
    public Pte WithUffdWp(bool protect) => new(protect ? (Raw | _PAGE_UFFD_WP) & ~_PAGE_RW : Raw & ~_PAGE_UFFD_WP);
    /// <summary>make_pte_marker(PTE_MARKER_UFFD_WP).</summary>
    public static Pte UffdWpMarker() => new(PTE_MARKER_UFFD_WP << SwpShift);

    public override string ToString() =>
        IsNone ? "none" : Present ? (Huge ? $"leaf pfn={Units.Hex(Pfn)}" : $"pte pfn={Units.Hex(Pfn)}") :
        IsHwpoison ? $"hwpoison pfn={Units.Hex(Pfn)}" : IsPoisonMarker ? "marker(POISONED)" : IsUffdWpMarker ? "marker(UFFD_WP)" : $"swp {Raw:x}";
}

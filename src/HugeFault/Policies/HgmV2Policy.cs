using HugeFault.Mm;

namespace HugeFault.Policies;

/// <summary>
/// HugeTLB high-granularity mapping exactly as posted: "[PATCH v2 00/46] hugetlb: introduce HugeTLB
/// high-granularity mapping" (James Houghton, Feb 2023, lore 20230218002819.1486479-1-jthoughton@google.com; never
/// merged). MADV_SPLIT enables HGM on a shared hugetlb VMA, after which userfaultfd reports 4 KiB fault addresses and
/// UFFDIO_CONTINUE maps 4 KiB, 2 MiB or whole-folio pieces (the hugetlb_pte walk, <see cref="Kernel.EnableHugetlbHgm"/>).
/// The series touched memory-failure.c only to cope with such mappings: hwpoison_user_mappings() still poisons the
/// whole folio, and try_to_unmap() turns every piece in every mapping into a hwpoison entry, so every later touch of
/// any byte of the folio — mapped piece or unmapped hole — gets BUS_MCEERR_AR with the hstate's shift (its selftest
/// hugetlb-hgm.c checks exactly that: "we aren't yet testing high-granularity poison"). MADV_COLLAPSE remaps healthy
/// folios at huge size, returns 0, and leaves poisoned folios as they are. Next to <c>hgm</c> (the intended 4 KiB
/// design) it shows what HGM's mapping work alone buys on a memory error: nothing.
/// </summary>
public sealed class HgmV2Policy : RecoveryPolicyBase
{
    /// <summary>This policy's name, summary and provenance (see <see cref="PolicyDescriptor"/>).</summary>
    public static readonly PolicyDescriptor Descriptor = new("hgm-v2",
        "HGM exactly as posted (v2, Feb 2023): MADV_SPLIT + 4 KiB UFFDIO_CONTINUE, but memory failure poisons the whole folio in every mapping; MADV_COLLAPSE skips poisoned folios",
        p => new HgmV2Policy(p),
        Provenance: "as posted: HGM v2 (lore 20230218002819.1486479-1-jthoughton@google.com), selftest hugetlb-hgm.c");

    public HgmV2Policy(IReadOnlyDictionary<string, string> parameters) : base(parameters) { }

    public override string Name => Descriptor.Name;

    /// <summary>hugetlb_fault() on a hwpoison entry of any HGM piece: VM_FAULT_HWPOISON_LARGE with the VMA's hstate index.</summary>
    public override int FaultShift(Kernel k, Vma vma, PteRef entry) => vma.Hstate!.Shift;

    public override SysResult? Madvise(Kernel k, TaskStruct t, ulong start, ulong end, int advice) => advice switch
    {
        Mman.MADV_SPLIT => k.EnableHugetlbHgm(t, start, end),
        Mman.MADV_COLLAPSE => k.HugetlbCollapse(t, start, end, poisonedFails: false),
        _ => null,
    };
}

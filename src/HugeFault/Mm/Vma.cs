using HugeFault.Fs;

namespace HugeFault.Mm;

/// <summary>vm_flags bits the model uses (include/linux/mm.h names).</summary>
[Flags]
public enum VmFlags : uint
{
    None = 0,
    VM_READ = 1 << 0,
    VM_WRITE = 1 << 1,
    VM_SHARED = 1 << 3,
    VM_HUGETLB = 1 << 22,
    VM_NORESERVE = 1 << 21,
    VM_UFFD_MISSING = 1 << 9,
    VM_UFFD_MINOR = 1 << 10,
    VM_UFFD_WP = 1 << 12,
    /// <summary>HGM: VM_HUGETLB_HGM, set by MADV_SPLIT, never cleared.</summary>
    VM_HUGETLB_HGM = 1 << 26,
    VM_ACCOUNT = 1 << 20,
}

/// <summary>struct vm_area_struct: one mapping [Start, End) of an mm.</summary>
public sealed class Vma
{
    public Vma(MmStruct mm, ulong start, ulong end, VmFlags flags, Inode? file, ulong pgoff)
    { Mm = mm; Start = start; End = end; Flags = flags; File = file; PgOff = pgoff; }

    public MmStruct Mm { get; }
    public ulong Start { get; set; }
    public ulong End { get; set; }
    public VmFlags Flags { get; set; }
    /// <summary>vm_file's inode (hugetlbfs, memfd, tmpfs); anonymous MAP_HUGETLB mappings get an internal hugetlbfs inode like hugetlb_file_setup().</summary>
    public Inode? File { get; set; }
    /// <summary>vm_pgoff in 4 KiB pages.</summary>
    public ulong PgOff { get; set; }
    public AnonVma? AnonVma { get; set; }
    /// <summary>The huge page size of a hugetlb VMA (hstate_vma()).</summary>
    public Hstate? Hstate { get; set; }
    /// <summary>Private-mapping reservations not yet consumed (the VMA's resv_map), by huge-page index in the file.</summary>
    public HashSet<ulong>? PrivateResv { get; set; }
    /// <summary>Userfaultfd context registered on this VMA.</summary>
    public Userfaultfd? Uffd { get; set; }
    /// <summary>Scenario-level name of the mapping this VMA came from (for readable traces).</summary>
    public string Name { get; set; } = "";
    /// <summary>Start address of the whole user mapping this VMA belongs to (for "name+offset" addresses after splits).</summary>
    public ulong NameBase { get; set; }

    public ulong Length => End - Start;
    public bool IsHugetlb => (Flags & VmFlags.VM_HUGETLB) != 0;
    public bool IsShared => (Flags & VmFlags.VM_SHARED) != 0;
    public bool IsHgm => (Flags & VmFlags.VM_HUGETLB_HGM) != 0;
    public bool Contains(ulong va) => va >= Start && va < End;

    /// <summary>linear_page_index(): file offset in bytes of va.</summary>
    public ulong FileOffset(ulong va) => (PgOff << Units.PAGE_SHIFT) + (va - Start);
    /// <summary>vma_address(): the VA at which this VMA maps file offset off, or null if outside.</summary>
    public ulong? AddressOf(ulong fileOff)
    {
        ulong start = PgOff << Units.PAGE_SHIFT;
        if (fileOff < start || fileOff >= start + Length) return null;
        return Start + (fileOff - start);
    }

    public override string ToString() => $"vma {Units.Hex(Start)}-{Units.Hex(End)} {Flags} {Name}";
}

/// <summary>struct mm_struct: an address space, its VMAs and its page tables.</summary>
public sealed class MmStruct
{
    public MmStruct(int id, PageTable pgd) { Id = id; Pgd = pgd; }
    public int Id { get; }
    public PageTable Pgd { get; }
    public List<Vma> Vmas { get; } = new();
    /// <summary>Page-table pages held by this mm (including the PGD): mm_pgtables_bytes()/PAGE_SIZE.</summary>
    public int PgtablePages { get; set; } = 1;
    /// <summary>Tasks (threads) using this mm.</summary>
    public int Users { get; set; }
    /// <summary>Next top-down mmap base (arch_get_unmapped_area_topdown).</summary>
    public ulong MmapBase { get; set; } = 0x7f00_0000_0000UL;

    public Vma? FindVma(ulong va)
    {
        foreach (var v in Vmas) if (v.Contains(va)) return v;
        return null;
    }
}

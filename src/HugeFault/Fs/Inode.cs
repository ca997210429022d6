using HugeFault.Mm;

namespace HugeFault.Fs;

/// <summary>Which filesystem an inode belongs to.</summary>
public enum FsKind { Hugetlbfs, Tmpfs }

/// <summary>
/// An inode of hugetlbfs (or a MFD_HUGETLB memfd, which is a hugetlbfs inode) or tmpfs/shmem, with its
/// page cache (address_space i_pages, indexed in units of the folio size) and i_mmap (the VMAs mapping it).
/// </summary>
public sealed class Inode
{
    public Inode(int ino, FsKind kind, string name, Hstate? hstate)
    { Ino = ino; Kind = kind; Name = name; Hstate = hstate; }

    public int Ino { get; }
    public FsKind Kind { get; }
    public string Name { get; }
    public Hstate? Hstate { get; }
    public ulong Size { get; set; }
    /// <summary>memfd_create(MFD_MF_KEEP_UE_MAPPED) (Jiaqi Yan's proposal): keep poisoned folios mapped.</summary>
    public bool KeepUeMapped { get; set; }
    /// <summary>Anonymous MAP_HUGETLB backing file (hugetlb_file_setup()), not visible by name.</summary>
    public bool Internal { get; set; }
    public int OpenCount { get; set; }
    public bool Unlinked { get; set; }

    /// <summary>tmpfs huge=always: 2 MiB THP folios mapped by PTEs (0 = order-0 pages).</summary>
    public int ShmemFolioOrder { get; init; }
    /// <summary>Folio size of this file's page cache.</summary>
    public ulong FolioSize => 1UL << FolioShift;
    public int FolioShift => Hstate?.Shift ?? Units.PAGE_SHIFT + ShmemFolioOrder;
    /// <summary>Guest RAM of a VM (a KVM memslot is backed by it): recovery may not silently change its content.</summary>
    public bool GuestMemory { get; set; }

    /// <summary>i_pages: index (in FolioSize units) to folio.</summary>
    public PageCacheXArray PageCache { get; } = new();
    /// <summary>i_mmap: VMAs mapping this file (interval tree in Linux; a list here).</summary>
    public List<Vma> IMmap { get; } = new();
    /// <summary>The inode's resv_map for shared mappings: huge-page indices reserved and not yet faulted (region_chg/region_add).</summary>
    public HashSet<ulong> SharedResv { get; } = new();

    public bool IsHugetlb => Kind == FsKind.Hugetlbfs;
    public override string ToString() => $"inode {Ino} {Kind} '{Name}'";
}

/// <summary>struct file: an open file description with its position.</summary>
public sealed class OpenFile
{
    public OpenFile(Inode inode) { Inode = inode; }
    public Inode Inode { get; }
    public long Pos { get; set; }
    /// <summary>For a userfaultfd file: its context.</summary>
    public Userfaultfd? Uffd { get; init; }
}

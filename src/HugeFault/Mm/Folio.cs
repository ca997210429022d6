using HugeFault.Fs;

namespace HugeFault.Mm;

/// <summary>
/// A folio: one allocated, naturally aligned block of 2^order base pages (struct folio). hugetlb folios
/// are 2 MiB (order 9) or 1 GiB (order 18); ordinary anonymous and tmpfs pages are order 0.
/// </summary>
public sealed class Folio
{
    public Folio(ulong pfn, int order) { Pfn = pfn; Flags = new PageFlags(PageFlags.PG_head).WithOrder(order); }

    /// <summary>pfn of the head page.</summary>
    public ulong Pfn { get; }
    public PageFlags Flags { get; set; }
    public int Order => Flags.Order;
    public ulong NrPages => 1UL << Order;
    public ulong Size => NrPages << Units.PAGE_SHIFT;
    public int Shift => Order + Units.PAGE_SHIFT;
    public bool IsHugetlb => Flags.Has(PageFlags.PG_hugetlb);
    public bool IsHwpoison => Flags.Has(PageFlags.PG_hwpoison);
    public bool IsAnon => Flags.Has(PageFlags.PG_anon);

    /// <summary>folio_ref_count(): page cache + mappers' references, as far as the model needs them.</summary>
    public int RefCount { get; set; }
    /// <summary>folio_entire_mapcount(): mappings of the whole folio by one PUD/PMD leaf (hugetlb) or by its only PTE (order 0).</summary>
    public int EntireMapcount { get; set; }
    /// <summary>
    /// Number of leaf entries mapping part of this folio at less than folio size. Per-subpage mapcounts (HGM v2 / THP
    /// semantics) are not stored: <see cref="Kernel.SubpageMapcount"/> derives one from the page tables when asked.
    /// </summary>
    public int PartialMappings { get; set; }

    /// <summary>folio->mapping when file-backed (page cache) and folio->index in units of this folio.</summary>
    public Inode? Mapping { get; set; }
    public ulong Index { get; set; }
    /// <summary>folio->mapping when anonymous: the anon_vma whose VMAs may map it.</summary>
    public AnonVma? AnonVma { get; set; }

    /// <summary>memory_failure() took a reference on this in-use folio and never drops it (file folios): the folio outlives truncation (observed on 6.12).</summary>
    public bool MfRefHeld { get => _hwp?.MfRefHeld == true; set { if (value || _hwp is not null) Hwp.MfRefHeld = value; } }

    /// <summary>The raw_hwp_page list (_hugetlb_hwpoison): pfns of distinct poisoned raw pages, in arrival order.</summary>
    public List<ulong> RawHwp => Hwp.RawHwp ??= new();
    /// <summary>raw_hwp is not empty (without creating the list: most folios, page-table pages included, never get one).</summary>
    public bool HasRawHwp => _hwp?.RawHwp is { Count: > 0 };
    /// <summary>Raw pages of <see cref="RawHwp"/> poisoned by software only (MADV_HWPOISON, corrupt-pfn): their memory is fine.</summary>
    public HashSet<ulong> SimulatedHwp => Hwp.Simulated ??= new();
    /// <summary>SimulatedHwp.Contains(pfn), without creating the set.</summary>
    public bool IsSimulatedHwp(ulong pfn) => _hwp?.Simulated?.Contains(pfn) == true;
    /// <summary>SimulatedHwp.Remove(pfn), without creating the set.</summary>
    public void ForgetSimulatedHwp(ulong pfn) => _hwp?.Simulated?.Remove(pfn);

    /// <summary>Healthy raw pages that stay unmapped for the users' sake (copy-around's fake poison): new mappers get poison markers there.</summary>
    public SortedSet<ulong> FakePoison => Hwp.FakePoison ??= new();
    /// <summary>FakePoison.Count without creating the set.</summary>
    public int FakePoisonCount => _hwp?.FakePoison?.Count ?? 0;

    /// <summary>
    /// The memory-failure state only a poisoned (or fake-poisoned) folio has, in one object made when first needed: an
    /// ordinary 4 KiB folio (a VM's guest RAM has millions) carries one null reference for it, not four fields.
    /// </summary>
    private sealed class HwpState
    {
        public bool MfRefHeld;
        public List<ulong>? RawHwp;
        public HashSet<ulong>? Simulated;
        public SortedSet<ulong>? FakePoison;
    }
    private HwpState? _hwp;
    private HwpState Hwp => _hwp ??= new();

    /// <summary>Cacheline content, lazily created (null = all zero).</summary>
    public ContentMap? Content { get; set; }
    public ContentMap EnsureContent() => Content ??= new ContentMap();

    /// <summary>Total mapcount as folio_mapcount() reports it (entire + subpage maps).</summary>
    public int Mapcount => EntireMapcount + PartialMappings;
    public bool Mapped => Mapcount > 0;

    public bool ContainsPfn(ulong pfn) => pfn >= Pfn && pfn < Pfn + NrPages;
    public ulong PhysAddr => Pfn << Units.PAGE_SHIFT;

    public override string ToString() => $"folio pfn={Units.Hex(Pfn)} {Units.Size(Size)} {Flags}";
}

/// <summary>anon_vma: the set of VMAs that may map an anonymous folio (parent and forked children).</summary>
public sealed class AnonVma
{
    public List<Vma> Vmas { get; } = new();
}

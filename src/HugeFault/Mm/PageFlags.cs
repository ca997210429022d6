namespace HugeFault.Mm;

/// <summary>
/// The page flags of one struct page / folio that the model needs, packed in one ulong
/// (include/linux/page-flags.h names).
/// <code>
///  63           16 15      8 7 6 5 4 3 2 1 0
/// [   reserved   ][ order  ]| | | | | | | | '- PG_head        (compound/folio head)
///                           | | | | | | | '--- PG_hugetlb     (folio_test_hugetlb)
///                           | | | | | | '----- PG_hwpoison    (on the head: folio poisoned; on a raw page: quarantined)
///                           | | | | | '------- PG_dirty
///                           | | | | '--------- PG_anon        (folio_test_anon: mapping is an anon_vma)
///                           | | | '----------- hugetlb freed  (on a hugetlb free list: folio_test_hugetlb_freed)
///                           | | '------------- raw_hwp_unreliable (raw_hwp list lost: folio can never be freed)
///                           | '--------------- hugetlb temporary/surplus (free_huge_folio() dissolves it)
/// </code>
/// </summary>
public readonly record struct PageFlags(ulong Raw)
{
    public const ulong PG_head = 1UL << 0;
    public const ulong PG_hugetlb = 1UL << 1;
    public const ulong PG_hwpoison = 1UL << 2;
    public const ulong PG_dirty = 1UL << 3;
    public const ulong PG_anon = 1UL << 4;
    public const ulong HugetlbFreed = 1UL << 5;
    public const ulong RawHwpUnreliable = 1UL << 6;
    public const ulong HugetlbSurplus = 1UL << 7;
    private const int OrderShift = 8;
    private const ulong OrderMask = 0xFFUL << OrderShift;

    public bool Has(ulong flag) => (Raw & flag) != 0;
    public PageFlags With(ulong flag) => new(Raw | flag);
    public PageFlags Without(ulong flag) => new(Raw & ~flag);
    public int Order => (int)((Raw & OrderMask) >> OrderShift);
    public PageFlags WithOrder(int order) => new((Raw & ~OrderMask) | ((ulong)order << OrderShift));

    public override string ToString()
    {
        var parts = new List<string>();
        if (Has(PG_head)) parts.Add("head");
        if (Has(PG_hugetlb)) parts.Add("hugetlb");
        if (Has(PG_hwpoison)) parts.Add("hwpoison");
        if (Has(PG_dirty)) parts.Add("dirty");
        if (Has(PG_anon)) parts.Add("anon");
        if (Has(HugetlbFreed)) parts.Add("freed");
        if (Has(RawHwpUnreliable)) parts.Add("raw_hwp_unreliable");
        if (Has(HugetlbSurplus)) parts.Add("surplus");
        return $"order={Order} " + string.Join('|', parts);
    }
}

namespace HugeFault.Mm;

/// <summary>
/// struct hstate: the pool of one huge page size (mm/hugetlb.c). Counters keep the kernel's names;
/// free folios sit on a LIFO free list as enqueue_hugetlb_folio()/dequeue_hugetlb_folio_node_exact() use it.
/// </summary>
public sealed class Hstate
{
    public Hstate(int order) { Order = order; }

    public int Order { get; }
    public int Shift => Order + Units.PAGE_SHIFT;
    public ulong Size => 1UL << Shift;
    public string Name => Units.Size(Size);

    public long nr_huge_pages { get; set; }
    public long free_huge_pages { get; set; }
    public long resv_huge_pages { get; set; }
    public long surplus_huge_pages { get; set; }
    public long nr_overcommit_huge_pages { get; set; }

    /// <summary>hugepage_freelists: the last folio enqueued is dequeued first.</summary>
    public List<Folio> FreeList { get; } = new();

    /// <summary>available_huge_pages(): free pages not promised to a reservation.</summary>
    public long Available => free_huge_pages - resv_huge_pages;

    public override string ToString() =>
        $"hugepages-{Size >> 10}kB total={nr_huge_pages} free={free_huge_pages} resv={resv_huge_pages} surp={surplus_huge_pages}";
}

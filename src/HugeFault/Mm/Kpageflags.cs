using HugeFault.Mm;
using HugeFault.Scenarios;

namespace HugeFault;

// /proc/kpageflags (fs/proc/page.c stable_page_flags()) for the bits scenarios check.
public sealed partial class Kernel
{
    /// <summary>
    /// stable_page_flags(pfn): COMPOUND_HEAD/TAIL and HUGE for hugetlb folios, MMAP when mapped, ANON, BUDDY for a free
    /// page, HWPOISON. A hugetlb folio's HWPOISON is read from the folio (the head), so every page of a poisoned
    /// hugetlb folio shows it, as "proc: rewrite stable_page_flags()" (Matthew Wilcox, v6.10) does; before, the
    /// page's own flags were read and only the head page of a poisoned hugetlb folio showed HWPOISON.
    /// A raw page quarantined after a dissolve shows HWPOISON alone (taken off the buddy allocator).
    /// </summary>
    public ulong StablePageFlags(ulong pfn)
    {
        static ulong B(string n) => 1UL << PageFlagsExpect.Bits[n];
        if (pfn >= Phys.TotalPages) return B("NOPAGE");
        var folio = Phys.FolioOf(pfn);
        if (folio is null)
        {
            if (Phys.IsRawHwpoison(pfn)) return B("HWPOISON");
            return Phys.IsFreePfn(pfn) ? B("BUDDY") : 0;
        }
        ulong u = 0;
        bool head = pfn == folio.Pfn;
        if (folio.Order > 0) u |= head ? B("COMPOUND_HEAD") : B("COMPOUND_TAIL");
        if (folio.IsHugetlb) u |= B("HUGE");
        if (folio.Mapped) u |= B("MMAP");
        if (folio.IsAnon) u |= B("ANON");
        if (folio.Flags.Has(PageFlags.PG_dirty)) u |= B("DIRTY");
        bool poisoned = folio.IsHugetlb ? folio.IsHwpoison && (head || AtLeast(6, 10)) : folio.IsHwpoison || folio.RawHwp.Contains(pfn);
        if (poisoned) u |= B("HWPOISON");
        return u;
    }
}

namespace HugeFault.Mm;

/// <summary>x86-64 page geometry, with the kernel's names (arch/x86/include/asm/pgtable_64_types.h).</summary>
public static class Units
{
    public const int PAGE_SHIFT = 12;
    public const int PMD_SHIFT = 21;
    public const int PUD_SHIFT = 30;
    public const int PGDIR_SHIFT = 39;
    public const int CACHELINE_SHIFT = 6;
    public const ulong PAGE_SIZE = 1UL << PAGE_SHIFT;
    public const ulong PMD_SIZE = 1UL << PMD_SHIFT;
    public const ulong PUD_SIZE = 1UL << PUD_SHIFT;
    public const ulong CACHELINE = 1UL << CACHELINE_SHIFT;
    public const int PTRS_PER_TABLE = 512;
    public const ulong KiB = 1UL << 10, MiB = 1UL << 20, GiB = 1UL << 30, TiB = 1UL << 40;
    /// <summary>Buddy orders run from 0 (4 KiB) to 18 (1 GiB): MAX_PAGE_ORDER is smaller in Linux, gigantic pages come from memblock/CMA; we use one allocator for both.</summary>
    public const int MAX_ORDER = PUD_SHIFT - PAGE_SHIFT;

    public static ulong AlignDown(ulong x, ulong a) => x & ~(a - 1);
    public static ulong AlignUp(ulong x, ulong a) => (x + a - 1) & ~(a - 1);
    public static bool IsAligned(ulong x, ulong a) => (x & (a - 1)) == 0;

    /// <summary>Formats a byte count the way a kernel developer writes it (4K, 2M, 1G, 1.5T).</summary>
    public static string Size(ulong bytes)
    {
        if (bytes == 0) return "0";
        if (bytes % TiB == 0) return $"{bytes / TiB}T";
        if (bytes % GiB == 0) return $"{bytes / GiB}G";
        if (bytes % MiB == 0) return $"{bytes / MiB}M";
        if (bytes % KiB == 0) return $"{bytes / KiB}K";
        return bytes.ToString();
    }

    public static string Hex(ulong x) => "0x" + x.ToString("x");
}

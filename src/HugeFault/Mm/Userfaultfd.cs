namespace HugeFault.Mm;

/// <summary>A userfaultfd context (struct userfaultfd_ctx): features and pending fault messages.</summary>
public sealed class Userfaultfd
{
    public const ulong UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1UL << 0;
    public const ulong UFFD_FEATURE_EVENT_FORK = 1UL << 1;
    public const ulong UFFD_FEATURE_MISSING_HUGETLBFS = 1UL << 4;
    public const ulong UFFD_FEATURE_SIGBUS = 1UL << 7;
    public const ulong UFFD_FEATURE_MINOR_HUGETLBFS = 1UL << 9;
    public const ulong UFFD_FEATURE_MINOR_SHMEM = 1UL << 10;
    public const ulong UFFD_FEATURE_EXACT_ADDRESS = 1UL << 11;
    public const ulong UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1UL << 12;
    public const ulong UFFD_FEATURE_POISON = 1UL << 14;

    /// <summary>A UFFD_FEATURE_* name's bit (0 for a name the model does not know).</summary>
    public static ulong FeatureBit(string name) => name switch
    {
        "UFFD_FEATURE_PAGEFAULT_FLAG_WP" => UFFD_FEATURE_PAGEFAULT_FLAG_WP, "UFFD_FEATURE_EVENT_FORK" => UFFD_FEATURE_EVENT_FORK,
        "UFFD_FEATURE_MISSING_HUGETLBFS" => UFFD_FEATURE_MISSING_HUGETLBFS, "UFFD_FEATURE_SIGBUS" => UFFD_FEATURE_SIGBUS,
        "UFFD_FEATURE_MINOR_HUGETLBFS" => UFFD_FEATURE_MINOR_HUGETLBFS, "UFFD_FEATURE_MINOR_SHMEM" => UFFD_FEATURE_MINOR_SHMEM,
        "UFFD_FEATURE_EXACT_ADDRESS" => UFFD_FEATURE_EXACT_ADDRESS, "UFFD_FEATURE_WP_HUGETLBFS_SHMEM" => UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
        "UFFD_FEATURE_POISON" => UFFD_FEATURE_POISON, _ => 0,
    };

    public Userfaultfd(int id) { Id = id; }
    public int Id { get; }
    public ulong Features { get; set; }
    public bool ApiDone { get; set; }
    /// <summary>Fault addresses reported to the handler (struct uffd_msg), in order.</summary>
    public List<ulong> Messages { get; } = new();
}

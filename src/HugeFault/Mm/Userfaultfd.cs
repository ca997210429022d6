namespace HugeFault.Mm;

/// <summary>A userfaultfd context (struct userfaultfd_ctx): features and pending fault messages.</summary>
public sealed class Userfaultfd
{
    public const ulong UFFD_FEATURE_POISON = 1UL << 14;
    public const ulong UFFD_FEATURE_MINOR_HUGETLBFS = 1UL << 9;

    public Userfaultfd(int id) { Id = id; }
    public int Id { get; }
    public ulong Features { get; set; }
    public bool ApiDone { get; set; }
    /// <summary>Fault addresses reported to the handler (struct uffd_msg), in order.</summary>
    public List<ulong> Messages { get; } = new();
}

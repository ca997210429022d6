namespace HugeFault.Recovery.Kernel;

/// <summary>Linux x86-64 syscall numbers and uapi constants, spelled as in the kernel so grep works.</summary>
public static class Uapi
{
    // arch/x86/entry/syscalls/syscall_64.tbl
    public const long __NR_read = 0, __NR_write = 1, __NR_close = 3, __NR_fstat = 5, __NR_mmap = 9, __NR_munmap = 11,
        __NR_ioctl = 16, __NR_pread64 = 17, __NR_mremap = 25, __NR_madvise = 28, __NR_getpid = 39, __NR_uname = 63,
        __NR_fcntl = 72, __NR_ftruncate = 77, __NR_fstatfs = 138, __NR_setpriority = 141, __NR_prctl = 157, __NR_gettid = 186, __NR_futex = 202,
        __NR_getdents64 = 217, __NR_clock_gettime = 228, __NR_openat = 257, __NR_newfstatat = 262,
        __NR_rt_tgsigqueueinfo = 297, __NR_memfd_create = 319, __NR_userfaultfd = 323;

    public const int AT_FDCWD = -100;
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_ACCMODE = 3, O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;
    public const int F_GETFL = 3, F_DUPFD_CLOEXEC = 1030;
    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000,
        MAP_POPULATE = 0x8000, MAP_HUGETLB = 0x40000;
    public const int MADV_DONTNEED = 4, MADV_DONTFORK = 10, MADV_DOFORK = 11, MADV_HUGEPAGE = 14, MADV_HWPOISON = 100;
    public const int MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2;
    public const uint MFD_CLOEXEC = 1, MFD_HUGETLB = 4;
    public const int MFD_HUGE_SHIFT = 26;
    public const uint MFD_HUGE_2MB = 21u << MFD_HUGE_SHIFT, MFD_HUGE_1GB = 30u << MFD_HUGE_SHIFT;
    public const int PR_MCE_KILL = 33, PR_MCE_KILL_SET = 1, PR_MCE_KILL_EARLY = 1;
    public const int FUTEX_WAIT_PRIVATE = 128, FUTEX_WAKE_PRIVATE = 129;
    public const int CLOCK_MONOTONIC = 1;

    public const int SIGBUS = 7;
    public const int SA_SIGINFO = 0x4, SA_ONSTACK = 0x08000000, SA_RESTART = 0x10000000;
    public const int BUS_ADRERR = 2, BUS_MCEERR_AR = 4, BUS_MCEERR_AO = 5;

    /// <summary>fs/hugetlbfs (include/uapi/linux/magic.h).</summary>
    public const long HUGETLBFS_MAGIC = 0x958458f6;

    // include/uapi/linux/userfaultfd.h (UFFD_FEATURE_POISON and UFFDIO_POISON: v6.6)
    public const int UFFD_USER_MODE_ONLY = 1;
    public const long UFFD_API = 0xAA;
    public const ulong UFFD_FEATURE_POISON = 1UL << 14;
    public const long UFFDIO_API = 0xC018AA3F;        // _IOWR(0xAA, 0x3F, struct uffdio_api)
    public const long UFFDIO_REGISTER = 0xC020AA00;   // _IOWR(0xAA, 0x00, struct uffdio_register)
    public const long UFFDIO_UNREGISTER = 0x8010AA01; // _IOR(0xAA, 0x01, struct uffdio_range)
    public const long UFFDIO_POISON = 0xC020AA08;     // _IOWR(0xAA, 0x08, struct uffdio_poison)
    public const ulong UFFDIO_REGISTER_MODE_MISSING = 1;

    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, EBADF = 9, ENOMEM = 12, EACCES = 13,
        EFAULT = 14, EBUSY = 16, EEXIST = 17, EINVAL = 22, ENOSPC = 28, ENOSYS = 38, ENODATA = 61, EOPNOTSUPP = 95;

    public const long PAGE_SIZE = 4096;
    public const int PAGE_SHIFT = 12;

    /// <summary>errno name for messages ("EIO"), or "E&lt;n&gt;".</summary>
    public static string ErrnoName(long e) => Math.Abs(e) switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", ESRCH => "ESRCH", EINTR => "EINTR", EIO => "EIO", EBADF => "EBADF",
        ENOMEM => "ENOMEM", EACCES => "EACCES", EFAULT => "EFAULT", EBUSY => "EBUSY", EEXIST => "EEXIST",
        EINVAL => "EINVAL", ENOSPC => "ENOSPC", ENOSYS => "ENOSYS", ENODATA => "ENODATA", EOPNOTSUPP => "EOPNOTSUPP",
        _ => "E" + Math.Abs(e),
    };

    /// <summary>si_code name of a SIGBUS.</summary>
    public static string BusCodeName(int code) => code switch
    {
        BUS_ADRERR => "BUS_ADRERR", BUS_MCEERR_AR => "BUS_MCEERR_AR", BUS_MCEERR_AO => "BUS_MCEERR_AO", _ => "si_code " + code,
    };
}

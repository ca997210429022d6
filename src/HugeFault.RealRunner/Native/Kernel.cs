namespace HugeFault.RealRunner.Native;

/// <summary>Linux x86-64 constants, spelled as in the kernel's uapi headers so grep works.</summary>
internal static class Kernel
{
    // syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl)
    public const long __NR_read = 0, __NR_write = 1, __NR_open = 2, __NR_close = 3, __NR_lseek = 8,
        __NR_mmap = 9, __NR_mprotect = 10, __NR_munmap = 11, __NR_ioctl = 16, __NR_pread64 = 17,
        __NR_pipe = 22, __NR_madvise = 28, __NR_nanosleep = 35, __NR_getpid = 39, __NR_exit = 60,
        __NR_wait4 = 61, __NR_uname = 63, __NR_ftruncate = 77, __NR_prctl = 157, __NR_exit_group = 231,
        __NR_fallocate = 285, __NR_memfd_create = 319, __NR_userfaultfd = 323,
        __NR_shmget = 29, __NR_shmat = 30, __NR_shmctl = 31, __NR_shmdt = 67, __NR_unlink = 87;

    // SysV IPC (include/uapi/linux/ipc.h, shm.h)
    public const long IPC_CREAT = 0x200, IPC_RMID = 0, SHM_HUGETLB = 0x800;

    public const long PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const long MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000,
        MAP_HUGETLB = 0x40000, MAP_POPULATE = 0x8000;
    public const int MAP_HUGE_SHIFT = 26;
    public const long MAP_HUGE_2MB = 21L << MAP_HUGE_SHIFT, MAP_HUGE_1GB = 30L << MAP_HUGE_SHIFT;

    public const long MFD_CLOEXEC = 0x0001, MFD_HUGETLB = 0x0004;
    public const long MFD_HUGE_2MB = 21L << 26, MFD_HUGE_1GB = 30L << 26;

    public const long MADV_DONTNEED = 4, MADV_HWPOISON = 100, MADV_SOFT_OFFLINE = 101;

    public const long PR_MCE_KILL = 33, PR_MCE_KILL_GET = 34, PR_MCE_KILL_CLEAR = 0, PR_MCE_KILL_SET = 1,
        PR_MCE_KILL_LATE = 0, PR_MCE_KILL_EARLY = 1, PR_MCE_KILL_DEFAULT = 2;

    public const long FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02;
    public const long SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2;
    public const long O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;

    public const int SIGBUS = 7;
    public const int SA_SIGINFO = 0x4, SA_ONSTACK = 0x08000000, SA_RESTART = 0x10000000;
    public const int BUS_ADRALN = 1, BUS_ADRERR = 2, BUS_OBJERR = 3, BUS_MCEERR_AR = 4, BUS_MCEERR_AO = 5;

    // userfaultfd (include/uapi/linux/userfaultfd.h; UFFDIO_POISON is v6.6+, absent from Debian 12 headers)
    public const long UFFD_API = 0xAA;
    public const ulong UFFD_FEATURE_MISSING_HUGETLBFS = 1 << 4, UFFD_FEATURE_POISON = 1 << 14;
    public const ulong UFFDIO_REGISTER_MODE_MISSING = 1;
    public const long UFFDIO_API = 0xC018AA3F;       // _IOWR(0xAA, 0x3F, struct uffdio_api: 24 B)
    public const long UFFDIO_REGISTER = 0xC020AA00;  // _IOWR(0xAA, 0x00, struct uffdio_register: 32 B)
    public const long UFFDIO_COPY = 0xC028AA03;      // _IOWR(0xAA, 0x03, struct uffdio_copy: 40 B)
    public const long UFFDIO_POISON = 0xC020AA08;    // _IOWR(0xAA, 0x08, struct uffdio_poison: 32 B)
    public const long UFFDIO_WRITEPROTECT = 0xC018AA06; // _IOWR(0xAA, 0x06, struct uffdio_writeprotect: 24 B)
    public const long UFFDIO_CONTINUE = 0xC020AA07;  // _IOWR(0xAA, 0x07, struct uffdio_continue: 32 B)

    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, EAGAIN = 11,
        ENOMEM = 12, EFAULT = 14, EBUSY = 16, EEXIST = 17, EINVAL = 22, ENOSPC = 28, ENOSYS = 38,
        EOPNOTSUPP = 95, EHWPOISON = 133;

    public static string ErrnoName(long e) => e switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", ESRCH => "ESRCH", EINTR => "EINTR", EIO => "EIO", ENXIO => "ENXIO",
        EBADF => "EBADF", EAGAIN => "EAGAIN", ENOMEM => "ENOMEM", EFAULT => "EFAULT", EBUSY => "EBUSY",
        EEXIST => "EEXIST", EINVAL => "EINVAL", ENOSPC => "ENOSPC", ENOSYS => "ENOSYS",
        EOPNOTSUPP => "EOPNOTSUPP", EHWPOISON => "EHWPOISON", _ => "E" + e,
    };

    public static string BusCodeName(int code) => code switch
    {
        BUS_ADRALN => "BUS_ADRALN", BUS_ADRERR => "BUS_ADRERR", BUS_OBJERR => "BUS_OBJERR",
        BUS_MCEERR_AR => "BUS_MCEERR_AR", BUS_MCEERR_AO => "BUS_MCEERR_AO", _ => "code" + code,
    };

    public const long PAGE_SIZE = 4096, HPAGE_2M = 2L << 20, HPAGE_1G = 1L << 30;
}

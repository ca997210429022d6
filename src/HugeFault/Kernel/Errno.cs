namespace HugeFault;

/// <summary>errno values (include/uapi/asm-generic/errno*.h) the model returns.</summary>
public static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EFAULT = 14,
        EBUSY = 16, EEXIST = 17, EINVAL = 22, ENOSPC = 28, ESPIPE = 29, ENOSYS = 38, EOPNOTSUPP = 95, EHWPOISON = 133;

    private static readonly Dictionary<int, string> Names = new()
    {
        [EPERM] = "EPERM", [ENOENT] = "ENOENT", [EINTR] = "EINTR", [EIO] = "EIO", [EBADF] = "EBADF", [EAGAIN] = "EAGAIN",
        [ENOMEM] = "ENOMEM", [EFAULT] = "EFAULT", [EBUSY] = "EBUSY", [EEXIST] = "EEXIST", [EINVAL] = "EINVAL",
        [ENOSPC] = "ENOSPC", [ESPIPE] = "ESPIPE", [ENOSYS] = "ENOSYS", [EOPNOTSUPP] = "EOPNOTSUPP", [EHWPOISON] = "EHWPOISON",
    };

    public static string Name(int errno) => Names.TryGetValue(errno, out var n) ? n : $"E{errno}";
    public static int? Parse(string name) { foreach (var kv in Names) if (kv.Value == name) return kv.Key; return null; }
}

/// <summary>Signal numbers and si_code values (include/uapi/asm-generic/siginfo.h).</summary>
public static class Sig
{
    public const int SIGKILL = 9, SIGBUS = 7, SIGSEGV = 11;
    public const int BUS_ADRALN = 1, BUS_ADRERR = 2, BUS_OBJERR = 3, BUS_MCEERR_AR = 4, BUS_MCEERR_AO = 5;
    public const int SEGV_MAPERR = 1, SEGV_ACCERR = 2;
    public const int SI_KERNEL = 0x80;

    public static string Name(int signo) => signo switch { SIGKILL => "SIGKILL", SIGBUS => "SIGBUS", SIGSEGV => "SIGSEGV", _ => $"SIG{signo}" };

    public static string CodeName(int signo, int code) => (signo, code) switch
    {
        (SIGBUS, BUS_ADRALN) => "BUS_ADRALN", (SIGBUS, BUS_ADRERR) => "BUS_ADRERR", (SIGBUS, BUS_OBJERR) => "BUS_OBJERR",
        (SIGBUS, BUS_MCEERR_AR) => "BUS_MCEERR_AR", (SIGBUS, BUS_MCEERR_AO) => "BUS_MCEERR_AO",
        (SIGSEGV, SEGV_MAPERR) => "SEGV_MAPERR", (SIGSEGV, SEGV_ACCERR) => "SEGV_ACCERR",
        (_, SI_KERNEL) => "SI_KERNEL", _ => code.ToString(),
    };
}

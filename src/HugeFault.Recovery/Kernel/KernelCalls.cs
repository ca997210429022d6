using System.Text;

namespace HugeFault.Recovery.Kernel;

/// <summary>Typed wrappers over <see cref="IKernel.Syscall"/> for the calls <c>Protect</c> makes.</summary>
public static unsafe class KernelCalls
{
    /// <summary>uname(2) release field ("6.12.117+deb12-amd64"), or null.</summary>
    public static string? UnameRelease(IKernel k)
    {
        byte* u = stackalloc byte[6 * 65];
        new Span<byte>(u, 6 * 65).Clear();
        if (k.Syscall(Uapi.__NR_uname, (long)u) != 0) return null;
        return CString(u + 2 * 65, 65);
    }

    /// <summary>"6.12.117+deb12-amd64" → 6.12; null if the text does not start with MAJOR.MINOR.</summary>
    public static Version? ParseRelease(string release)
    {
        int i = 0, major = 0, minor = 0;
        if (!Digits(release, ref i, out major) || i >= release.Length || release[i++] != '.' || !Digits(release, ref i, out minor)) return null;
        return new Version(major, minor);
    }

    private static bool Digits(string s, ref int i, out int v)
    {
        v = 0; int start = i;
        while (i < s.Length && char.IsAsciiDigit(s[i]) && i - start < 6) v = v * 10 + (s[i++] - '0');
        return i > start;
    }

    /// <summary>fstatfs(2): (f_type, f_bsize), or the −errno in Err.</summary>
    public static (long Type, long BlockSize, long Err) Fstatfs(IKernel k, int fd)
    {
        long* st = stackalloc long[15]; // struct statfs (x86-64): f_type +0, f_bsize +8, 120 bytes
        new Span<long>(st, 15).Clear();
        long r = k.Syscall(Uapi.__NR_fstatfs, fd, (long)st);
        return r < 0 ? (0, 0, r) : (st[0], st[1], 0);
    }

    /// <summary>fstat(2): (st_dev, st_ino, st_mode), or the −errno in Err.</summary>
    public static (ulong Dev, ulong Ino, uint Mode, long Err) Fstat(IKernel k, int fd)
    {
        byte* st = stackalloc byte[144]; // struct stat (x86-64): st_dev +0, st_ino +8, st_mode +24
        new Span<byte>(st, 144).Clear();
        long r = k.Syscall(Uapi.__NR_fstat, fd, (long)st);
        return r < 0 ? (0, 0, 0, r) : (*(ulong*)st, *(ulong*)(st + 8), *(uint*)(st + 24), 0);
    }

    /// <summary>The whole text of a (small) file such as /proc/self/maps, or null with the −errno.</summary>
    public static string? ReadText(IKernel k, string path, out long err)
    {
        long fd = OpenAt(k, path, Uapi.O_RDONLY | Uapi.O_CLOEXEC);
        err = fd < 0 ? fd : 0;
        if (fd < 0) return null;
        var ms = new MemoryStream();
        byte* buf = stackalloc byte[16384];
        try
        {
            for (;;)
            {
                long n = k.Syscall(Uapi.__NR_read, fd, (long)buf, 16384);
                if (n == -Uapi.EINTR) continue;
                if (n < 0) { err = n; return null; }
                if (n == 0) break;
                ms.Write(new ReadOnlySpan<byte>(buf, (int)n));
            }
        }
        finally { k.Syscall(Uapi.__NR_close, fd); }
        return Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length);
    }

    /// <summary>openat(AT_FDCWD, path, flags).</summary>
    public static long OpenAt(IKernel k, string path, int flags)
    {
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* pp = p) return k.Syscall(Uapi.__NR_openat, Uapi.AT_FDCWD, (long)pp, flags);
    }

    /// <summary>userfaultfd(2) + UFFDIO_API: the fd (or −errno) and the features the kernel offers.</summary>
    public static (long Fd, ulong Features, long ApiErr) OpenUserfaultfd(IKernel k, ulong features)
    {
        long fd = k.Syscall(Uapi.__NR_userfaultfd, Uapi.O_CLOEXEC | Uapi.O_NONBLOCK | Uapi.UFFD_USER_MODE_ONLY);
        if (fd == -Uapi.EINVAL) fd = k.Syscall(Uapi.__NR_userfaultfd, Uapi.O_CLOEXEC | Uapi.O_NONBLOCK); // before 5.11
        if (fd < 0) return (fd, 0, 0);
        ulong* api = stackalloc ulong[3]; // struct uffdio_api { api, features, ioctls }
        api[0] = (ulong)Uapi.UFFD_API; api[1] = features; api[2] = 0;
        long r = k.Syscall(Uapi.__NR_ioctl, fd, Uapi.UFFDIO_API, (long)api);
        return (fd, r < 0 ? 0 : api[1], r);
    }

    private static string CString(byte* p, int max)
    {
        int n = 0;
        while (n < max && p[n] != 0) n++;
        return Encoding.UTF8.GetString(p, n);
    }
}

using System.Runtime.InteropServices;

namespace HugeFault.RealRunner.Native;

/// <summary>One SIGBUS (or other signal) seen by the handler in <c>Stubs.s</c>.</summary>
/// <param name="Action">1 = fault in an access routine, RIP moved to its fixup; 2 = delivered on
/// return from a syscall made through <see cref="ExceptionTable.Syscall"/>; 3 = BUS_MCEERR_AO,
/// recorded and ignored; 4 = unexpected site, chained to the previous handler.</param>
/// <param name="Tid">The thread that received it (gettid() in the handler).</param>
internal readonly record struct SignalRecord(int Signo, int Code, ulong Addr, int AddrLsb, ulong Rip, int Action, long Tid = 0)
{
    public string ActionName => Action switch
    {
        1 => "fixup", 2 => "syscall-return", 3 => "async-ignored", 4 => "chained", _ => "unknown",
    };
}

/// <summary>
/// A user-space copy of the kernel's exception-table idea (<c>copy_mc_to_user</c> + extable fixups),
/// used to survive SIGBUS from poisoned hugetlb memory without forking per access.
/// </summary>
/// <remarks>
/// <para>Why not catch SIGBUS in managed code: the handler would have to be an
/// <c>[UnmanagedCallersOnly]</c> method, and a reverse P/Invoke from a signal that interrupted
/// managed code in cooperative mode (an asynchronous BUS_MCEERR_AO can arrive anywhere) fails fast
/// in NativeAOT. A handler that is 60 instructions of machine code runs in any context, touches no
/// runtime state and cannot deadlock with the GC.</para>
/// <para>Why not fork per access: a child's writes to a MAP_PRIVATE mapping are lost and the
/// child's page tables are not the parent's, so "what does this process see" cannot be observed.</para>
/// <para>Layout: one anonymous mapping of two pages. Page 0 holds the code of <c>Stubs.s</c>
/// (made read+exec); page 1 is the handler's data: record counter, previous handler, fixup table
/// and 56 records. Records are per process (a fork child has its own copy of the page).</para>
/// </remarks>
internal static unsafe class ExceptionTable
{
    private const int DataOffset = Stubs.Data;
    private const int RecordsOffset = 512, RecordSize = 64, MaxRecords = 56;

    private static byte* s_base;
    private static delegate* unmanaged<byte*, long> s_load;
    private static delegate* unmanaged<byte*, long, long> s_store;
    private static delegate* unmanaged<byte*, byte*, long, long> s_copy;
    private static delegate* unmanaged<long, long, long, long, long, long, long, long> s_sys;
    private static int s_consumed;

    public static bool Installed => s_base != null;

    /// <summary>Maps the code page, fills the fixup table and installs the SIGBUS handler.</summary>
    public static void Install()
    {
        if (s_base != null) return;
        // Bootstrap: the syscall stub does not exist yet, so this one mapping comes from libc mmap,
        // read+write+exec until the code is in place; then the code page drops write.
        byte* p = (byte*)RawMmap(2 * 4096);
        Stubs.Code.CopyTo(new Span<byte>(p, Stubs.Code.Length));
        s_base = p;
        s_sys = (delegate* unmanaged<long, long, long, long, long, long, long, long>)(p + Stubs.Sys6);
        if (Syscall(Kernel.__NR_mprotect, (long)p, 4096, Kernel.PROT_READ | Kernel.PROT_EXEC) != 0)
            throw new InvalidOperationException("mprotect of the stub page failed");
        s_load = (delegate* unmanaged<byte*, long>)(p + Stubs.LoadByte);
        s_store = (delegate* unmanaged<byte*, long, long>)(p + Stubs.StoreByte);
        s_copy = (delegate* unmanaged<byte*, byte*, long, long>)(p + Stubs.CopyMc);

        byte* data = p + DataOffset;
        ulong* table = (ulong*)(data + 64);
        table[0] = (ulong)(p + Stubs.LoadByte); table[1] = (ulong)(p + Stubs.LoadFix);
        table[2] = (ulong)(p + Stubs.StoreByte); table[3] = (ulong)(p + Stubs.StoreFix);
        table[4] = (ulong)(p + Stubs.CopyInsn); table[5] = (ulong)(p + Stubs.CopyFix);
        table[6] = 0;

        EnsureAltStack();

        // glibc struct sigaction (x86-64): handler +0, sa_mask +8 (128 B), sa_flags +136, restorer +144.
        byte* act = stackalloc byte[152];
        byte* old = stackalloc byte[152];
        new Span<byte>(act, 152).Clear();
        new Span<byte>(old, 152).Clear();
        *(ulong*)act = (ulong)(p + Stubs.Handler);
        *(int*)(act + 136) = Kernel.SA_SIGINFO | Kernel.SA_ONSTACK | Kernel.SA_RESTART;
        if (Libc.sigaction(Kernel.SIGBUS, act, old) != 0)
            throw new InvalidOperationException("sigaction(SIGBUS) failed");
        *(ulong*)(data + 8) = *(ulong*)old;   // previous handler (SIG_DFL = 0, SIG_IGN = 1, or a function)
        *(ulong*)(data + 16) = (ulong)*(int*)(old + 136);
    }

    /// <summary>The handler that was installed before ours (0 = SIG_DFL).</summary>
    public static ulong PreviousHandler => *(ulong*)(s_base + DataOffset + 8);

    private static void* RawMmap(long len)
    {
        void* r = LibcMmap(null, (nuint)len, (int)(Kernel.PROT_READ | Kernel.PROT_WRITE | Kernel.PROT_EXEC),
            (int)(Kernel.MAP_PRIVATE | Kernel.MAP_ANONYMOUS), -1, 0);
        if ((long)r == -1) throw new InvalidOperationException("mmap of the stub page failed");
        return r;
    }

    [DllImport("libc.so.6", EntryPoint = "mmap")]
    private static extern void* LibcMmap(void* addr, nuint len, int prot, int flags, int fd, long off);

    private static void EnsureAltStack()
    {
        // stack_t: ss_sp +0, ss_flags +8 (SS_DISABLE = 2), ss_size +16.
        byte* cur = stackalloc byte[24];
        if (Libc.sigaltstack(null, cur) != 0) return;
        if ((*(int*)(cur + 8) & 2) == 0) return;  // the runtime already gave this thread one
        const long size = 256 * 1024;
        long sp = Syscall(Kernel.__NR_mmap, 0, size, Kernel.PROT_READ | Kernel.PROT_WRITE,
            Kernel.MAP_PRIVATE | Kernel.MAP_ANONYMOUS, -1, 0);
        if (sp < 0) return;
        byte* ss = stackalloc byte[24];
        *(long*)ss = sp; *(int*)(ss + 8) = 0; *(long*)(ss + 16) = size;
        Libc.sigaltstack(ss, null);
    }

    /// <summary>Raw syscall through the stub page: returns the result, or −errno.</summary>
    public static long Syscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0)
        => s_sys(nr, a1, a2, a3, a4, a5, a6);

    /// <summary>Loads one byte; −1 if the load raised SIGBUS (recorded).</summary>
    public static long LoadByte(byte* p) => s_load(p);

    /// <summary>Stores one byte; 0 on success, −1 if the store raised SIGBUS (recorded).</summary>
    public static long StoreByte(byte* p, byte v) => s_store(p, v);

    /// <summary>Copies <paramref name="n"/> bytes with <c>rep movsb</c>; returns bytes NOT copied.</summary>
    public static long CopyMc(byte* dst, byte* src, long n) => s_copy(dst, src, n);

    /// <summary>Total signals recorded in this process (including any beyond the record capacity).</summary>
    public static long Count => Volatile.Read(ref *(long*)(s_base + DataOffset));

    /// <summary>Returns the records not yet returned by a previous call in this process.</summary>
    public static List<SignalRecord> Drain()
    {
        var list = new List<SignalRecord>();
        long n = Math.Min(Count, MaxRecords);
        for (; s_consumed < n; s_consumed++)
        {
            byte* r = s_base + DataOffset + RecordsOffset + s_consumed * RecordSize;
            list.Add(new SignalRecord(*(int*)r, *(int*)(r + 4), *(ulong*)(r + 8), (int)*(long*)(r + 16),
                *(ulong*)(r + 24), (int)*(long*)(r + 32), *(long*)(r + 40)));
        }
        return list;
    }

    /// <summary>RIP as an offset into the stub page, or −1 if elsewhere.</summary>
    public static long StubOffset(ulong rip)
        => rip >= (ulong)s_base && rip < (ulong)s_base + 4096 ? (long)(rip - (ulong)s_base) : -1;
}

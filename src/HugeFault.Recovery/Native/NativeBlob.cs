using System.Runtime.InteropServices;

namespace HugeFault.Recovery.Native;

/// <summary>
/// One copy of the machine code of Native/*.c (<see cref="Blob"/>) in an executable mapping, with its own
/// data page (g_ctl). Each agent loads its own copy, so its handler finds its own control block; the copy
/// is never unmapped (a handler may still be running on some thread).
/// </summary>
internal sealed unsafe partial class NativeBlob
{
    private static NativeBlob? s_shared;

    /// <summary>A copy used only for raw syscalls and futexes (no control block).</summary>
    public static NativeBlob Shared => s_shared ??= new NativeBlob();

    public byte* Base { get; }

    public NativeBlob()
    {
        int codePages = (Blob.DataOffset + 4095) / 4096;
        long len = Blob.DataOffset + 4096;
        void* p = mmap(null, (nuint)len, 3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
        if ((long)p == -1) throw new InvalidOperationException("mmap of the recovery agent's code failed");
        Blob.Image.CopyTo(new Span<byte>(p, Blob.Image.Length));
        if (mprotect(p, (nuint)(codePages * 4096), 5 /* PROT_READ|PROT_EXEC */) != 0)
            throw new InvalidOperationException("mprotect of the recovery agent's code failed");
        Base = (byte*)p;
    }

    public nint Handler => (nint)(Base + Blob.HfHandler);
    public nint AgentRun => (nint)(Base + Blob.HfAgentRun);
    public nint Syscall => (nint)(Base + Blob.HfSyscall);
    public nint CopyMc => (nint)(Base + Blob.HfCopyMc);
    public nint CopyInsn => (nint)(Base + Blob.HfCopyInsn);

    /// <summary>The handler's pointer to its control block.</summary>
    public HfCtl** CtlSlot => (HfCtl**)(Base + Blob.GCtl);

    /// <summary>A real raw syscall (futexes, clocks), never the fake kernel.</summary>
    public long Raw(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0)
        => ((delegate* unmanaged<long, long, long, long, long, long, long, long>)Syscall)(nr, a1, a2, a3, a4, a5, a6);

    [LibraryImport("libc.so.6", EntryPoint = "mmap")]
    private static partial void* mmap(void* addr, nuint len, int prot, int flags, int fd, long off);

    [LibraryImport("libc.so.6", EntryPoint = "mprotect")]
    private static partial int mprotect(void* addr, nuint len, int prot);

    /// <summary>glibc's sigaction (it supplies the sa_restorer trampoline the kernel needs).</summary>
    [LibraryImport("libc.so.6", EntryPoint = "sigaction")]
    internal static partial int sigaction(int sig, void* act, void* oldact);
}

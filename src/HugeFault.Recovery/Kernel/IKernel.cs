using HugeFault.Recovery.Native;

namespace HugeFault.Recovery.Kernel;

/// <summary>
/// The agent's whole view of the kernel: one raw system call. <see cref="Syscall"/> serves the managed
/// checks of <c>Protect</c>; <see cref="NativeSyscall"/> is the same call as a C function pointer
/// (<c>hf_sys_fn</c> in Native/hf.h) for the agent thread, which never runs managed code. Tests substitute a
/// fake kernel for both.
/// </summary>
public interface IKernel
{
    /// <summary>A system call: its result, or −errno.</summary>
    long Syscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0);

    /// <summary><c>long (*)(long nr, long a1 … a6)</c> with the same behaviour, callable from native code.</summary>
    nint NativeSyscall { get; }
}

/// <summary>The running Linux kernel, reached through the raw <c>syscall</c> routine of the agent's machine code.</summary>
public sealed unsafe class LinuxKernel : IKernel
{
    /// <summary>The process's kernel.</summary>
    public static LinuxKernel Instance { get; } = new();

    private readonly delegate* unmanaged<long, long, long, long, long, long, long, long> _sys;

    private LinuxKernel()
    {
        NativeSyscall = NativeBlob.Shared.Syscall;
        _sys = (delegate* unmanaged<long, long, long, long, long, long, long, long>)NativeSyscall;
    }

    /// <inheritdoc/>
    public nint NativeSyscall { get; }

    /// <inheritdoc/>
    public long Syscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0)
        => _sys(nr, a1, a2, a3, a4, a5, a6);
}

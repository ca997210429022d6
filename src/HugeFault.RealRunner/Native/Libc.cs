using System.Runtime.InteropServices;

namespace HugeFault.RealRunner.Native;

/// <summary>
/// The few libc entry points that must go through glibc rather than a raw syscall: fork (atfork
/// handlers, pid cache), sigaction (glibc supplies the sa_restorer trampoline) and sigaltstack.
/// Everything else goes through <see cref="ExceptionTable.Syscall"/> so signals raised during a
/// syscall are recognised by their return address.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc.so.6";

    [LibraryImport(Lib, EntryPoint = "fork")]
    public static partial int fork();

    [LibraryImport(Lib, EntryPoint = "sigaction")]
    public static partial int sigaction(int sig, void* act, void* oldact);

    [LibraryImport(Lib, EntryPoint = "sigaltstack")]
    public static partial int sigaltstack(void* ss, void* oldss);
}

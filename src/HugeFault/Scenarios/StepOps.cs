using HugeFault.Mm;
using HugeFault.Virt;

namespace HugeFault.Scenarios;

/// <summary>A size argument: its value, and its spelling in the file (echoed in syscall traces as written).</summary>
public readonly record struct SizeArg(ulong Value, string Text)
{
    public static readonly SizeArg Zero = new(0, "0");
}

/// <summary>A flags argument (<c>[MAP_SHARED, MAP_HUGETLB]</c>): the bits and the spelling ("MAP_SHARED|MAP_HUGETLB").</summary>
public readonly record struct FlagsArg(long Bits, string Text);

/// <summary>A page frame: a saved variable (<c>$p</c>, read when the step runs) or a literal pfn.</summary>
public readonly record struct PfnArg(string? Var, ulong Value);

/// <summary>A range of a named mapping: name+offset, and a length (null: the op's default).</summary>
public sealed record MapRange(string Map, SizeArg Offset, SizeArg? Length);

/// <summary>
/// One scenario operation, parsed and validated at load time (one record type per op): the runner and the
/// real-kernel plan read typed values and never parse text. The <c>*Ref</c> members name what the op uses
/// (not what it creates), for the run-time checks of steps whose creating step failed.
/// </summary>
public abstract record StepOp
{
    public virtual string? MapRef => null;
    public virtual string? FdRef => null;
    public virtual string? UffdRef => null;
    public virtual string? VmRef => null;
}

public sealed record MemfdCreateOp(string Name, string Fd, FlagsArg Flags) : StepOp;
public sealed record OpenOp(string Path, string Fd, bool Create) : StepOp;
public sealed record CloseOp(string Fd) : StepOp { public override string? FdRef => Fd; }
public sealed record UnlinkOp(string Path) : StepOp;
public sealed record FtruncateOp(string Fd, SizeArg Length) : StepOp { public override string? FdRef => Fd; }
public sealed record FallocateOp(string Fd, FlagsArg Mode, SizeArg Offset, SizeArg Length) : StepOp { public override string? FdRef => Fd; }
public sealed record LseekOp(string Fd, long Offset, string OffsetText, int Whence, string WhenceText) : StepOp { public override string? FdRef => Fd; }
public sealed record ReadOp(string Fd, SizeArg Length) : StepOp { public override string? FdRef => Fd; }
public sealed record PreadOp(string Fd, SizeArg Length, SizeArg Offset) : StepOp { public override string? FdRef => Fd; }
public sealed record ReadLoopOp(string Fd, SizeArg Chunk) : StepOp { public override string? FdRef => Fd; }

/// <summary>mmap(NULL, length, prot, flags, fd, offset); <paramref name="Fd"/> null = -1.</summary>
public sealed record MmapOp(string Name, SizeArg Length, FlagsArg Prot, FlagsArg Flags, string? Fd, SizeArg Offset) : StepOp { public override string? FdRef => Fd; }
public sealed record MunmapOp(MapRange At) : StepOp { public override string? MapRef => At.Map; }
public sealed record MadviseOp(MapRange At, int Advice, string AdviceText) : StepOp { public override string? MapRef => At.Map; }
public sealed record StoreOp(MapRange At, Pattern Pattern) : StepOp { public override string? MapRef => At.Map; }
public sealed record LoadOp(MapRange At) : StepOp { public override string? MapRef => At.Map; }
public sealed record KvmGuestAccessOp(MapRange At) : StepOp { public override string? MapRef => At.Map; }
public sealed record PfnOfOp(MapRange At, string Save) : StepOp { public override string? MapRef => At.Map; }

public sealed record ForkOp(string Child) : StepOp;
public sealed record ThreadOp(string Name) : StepOp;
public sealed record ExitOp : StepOp;
public sealed record PrctlOp(MceKillPolicy Policy, string? Arg2, string? Arg3) : StepOp;
public sealed record SysctlOp(string Name, long Value) : StepOp;
public sealed record NrHugepagesOp(string Size, long Value) : StepOp;

/// <summary>A hardware error: at <paramref name="Phys"/>, at <paramref name="Pfn"/> + offset, at a mapping's or an open file's offset.</summary>
public sealed record HwErrorOp(SizeArg? Phys, PfnArg? Pfn, string? Map, string? Fd, SizeArg Offset, PoisonKind Kind, string Detect) : StepOp
{
    public override string? MapRef => Phys is null && Pfn is null ? Map : null;
    public override string? FdRef => Phys is null && Pfn is null && Map is null ? Fd : null;
}
public sealed record CorruptPfnOp(PfnArg? Pfn, MapRange? At) : StepOp { public override string? MapRef => Pfn is null ? At?.Map : null; }
public sealed record UnpoisonPfnOp(PfnArg? Pfn, MapRange? At) : StepOp { public override string? MapRef => Pfn is null ? At?.Map : null; }

public sealed record UserfaultfdOp(string Fd, FlagsArg Features) : StepOp;
public sealed record UffdioRegisterOp(string Uffd, MapRange At, int Mode) : StepOp { public override string? MapRef => At.Map; public override string? UffdRef => Uffd; }
public sealed record UffdioCopyOp(string Uffd, MapRange At, Pattern Pattern) : StepOp { public override string? MapRef => At.Map; public override string? UffdRef => Uffd; }
public sealed record UffdioPoisonOp(string Uffd, MapRange At) : StepOp { public override string? MapRef => At.Map; public override string? UffdRef => Uffd; }
public sealed record UffdioContinueOp(string Uffd, MapRange At) : StepOp { public override string? MapRef => At.Map; public override string? UffdRef => Uffd; }
public sealed record UffdioWriteprotectOp(string Uffd, MapRange At, bool Protect) : StepOp { public override string? MapRef => At.Map; public override string? UffdRef => Uffd; }

/// <summary>A KVM VM; <paramref name="Populate"/> null = none.</summary>
public sealed record VmCreateOp(string Name, ulong Ram, ulong PageSize, int Vcpus, GuestConfig Guest, Version Qemu, Pattern? Populate) : StepOp;
public sealed record GuestAccessOp(string Vm, ulong Gpa, ulong? Length, int Vcpu, bool Write, Pattern Pattern) : StepOp { public override string? VmRef => Vm; }
public sealed record GuestTouchOp(string Vm, ulong Gpa, ulong Length, int Pages, double Rate, int Vcpu) : StepOp { public override string? VmRef => Vm; }
public sealed record VmResetOp(string Vm) : StepOp { public override string? VmRef => Vm; }
public sealed record MigrateOp(string Vm, MigrationConfig Config) : StepOp { public override string? VmRef => Vm; }

public sealed record ShmgetOp(string Shm, SizeArg Size, FlagsArg Flags) : StepOp;
public sealed record ShmatOp(string Shm, string Name) : StepOp;
public sealed record ShmdtOp(string Map) : StepOp { public override string? MapRef => Map; }
public sealed record ShmRmidOp(string Shm) : StepOp;
public sealed record CheckOp : StepOp;

namespace HugeFault;

/// <summary>One event of a run's trace, stamped with the simulated time in nanoseconds.</summary>
public abstract record TraceEvent(long TimeNs)
{
    public abstract string Kind { get; }
    public abstract string Describe();
}

/// <summary>A system call (or scenario operation) and its result.</summary>
public sealed record SyscallEvent(long TimeNs, string Task, string Call, string Args, long Ret, int Errno) : TraceEvent(TimeNs)
{
    public override string Kind => "syscall";
    public override string Describe() => $"{Task}: {Call}({Args}) = {Ret}" + (Errno != 0 ? $" {HugeFault.Errno.Name(Errno)}" : "");
}

/// <summary>A signal delivered to a task, with the siginfo fields that matter for memory errors.</summary>
public sealed record SignalEvent(long TimeNs, string Task, int Signo, int SiCode, ulong SiAddr, string SiAddrSym, int SiAddrLsb, bool Forced) : TraceEvent(TimeNs)
{
    public override string Kind => "signal";
    public string SiCodeName => Sig.CodeName(Signo, SiCode);
    public override string Describe() => Signo == Sig.SIGKILL ? $"{Task} <- SIGKILL" :
        $"{Task} <- {Sig.Name(Signo)} {SiCodeName} si_addr={SiAddrSym} si_addr_lsb={SiAddrLsb}" + (Forced ? " (forced)" : "");
}

/// <summary>A kernel log line (dmesg).</summary>
public sealed record LogEvent(long TimeNs, string Text) : TraceEvent(TimeNs)
{
    public override string Kind => "log";
    public override string Describe() => Text;
}

/// <summary>A /proc/meminfo-style counter that changed.</summary>
public sealed record CounterEvent(long TimeNs, string Name, long Old, long New) : TraceEvent(TimeNs)
{
    public override string Kind => "counter";
    public override string Describe() => $"{Name}: {Old} -> {New}";
}

/// <summary>A memory access (load/store) by a task and how far it got.</summary>
public sealed record AccessEvent(long TimeNs, string Task, string Op, string Addr, ulong Length, ulong Done, string Outcome) : TraceEvent(TimeNs)
{
    public override string Kind => "access";
    public override string Describe() => $"{Task}: {Op} {Addr} len={Length} done={Done} {Outcome}";
}

/// <summary>Something a recovery policy or kernel path did that is not a syscall, signal or log line (unmaps, splits, copies).</summary>
public sealed record ActionEvent(long TimeNs, string Actor, string Text) : TraceEvent(TimeNs)
{
    public override string Kind => "action";
    public override string Describe() => $"[{Actor}] {Text}";
}

/// <summary>The host panicked (e.g. vm.memory_failure_recovery = 0).</summary>
public sealed record PanicEvent(long TimeNs, string Text) : TraceEvent(TimeNs)
{
    public override string Kind => "panic";
    public override string Describe() => "Kernel panic - not syncing: " + Text;
}

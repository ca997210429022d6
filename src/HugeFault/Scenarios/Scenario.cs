namespace HugeFault.Scenarios;

/// <summary>A position in a scenario file, for error messages (file:line:column).</summary>
public readonly record struct SourcePos(string File, int Line, int Column)
{
    public override string ToString() => $"{File}:{Line}:{Column}";
}

/// <summary>A scenario: a host, processes, and steps with expectations. Immutable once validated.</summary>
public sealed record Scenario(
    string File,
    string Name,
    string Description,
    bool Mainline,
    string? Spec,
    string? MinKernel,
    string? Notes,
    HostSpec Host,
    IReadOnlyList<ProcessSpec> Processes,
    IReadOnlyList<Step> Steps)
{
    /// <summary>The scenario as run against kernel <paramref name="version"/>: the model follows that kernel's behaviour.</summary>
    public Scenario ForKernel(Version version) => this with { Host = Host with { KernelVersion = version } };
}

/// <summary>The modelled host of a scenario.</summary>
public sealed record HostSpec(
    ulong Memory,
    long HugePages1G,
    long HugePages2M,
    long Overcommit1G,
    long Overcommit2M,
    bool EarlyKill,
    bool Recovery,
    string Policy,
    IReadOnlyDictionary<string, string> PolicyParams,
    Version KernelVersion);

/// <summary>A process that exists at the start, and what it does with SIGBUS.</summary>
public sealed record ProcessSpec(string Name, bool SigbusHandled);

/// <summary>One step: an operation with its arguments, and what to expect after it.</summary>
public sealed record Step(int Index, SourcePos Pos, string Op, IReadOnlyDictionary<string, Arg> Args, Expect? Expect, string? Note)
{
    public string? As => Args.TryGetValue("as", out var a) ? a.Text : null;
}

/// <summary>An argument value as written (text or list), with its position.</summary>
public sealed record Arg(SourcePos Pos, string Text, IReadOnlyList<string>? List = null);

/// <summary>Expectations checked after a step.</summary>
public sealed record Expect(
    SourcePos Pos,
    long? Ret,
    string? Errno,
    IReadOnlyList<SignalExpect>? Signals,
    bool SignalsExact,
    IReadOnlyDictionary<string, long>? MemInfo,
    IReadOnlyDictionary<string, HugepageExpect>? HugePages,
    IReadOnlyList<string>? Log,
    IReadOnlyList<string>? NoLog,
    string? Data,
    string? Outcome,
    IReadOnlyDictionary<string, bool>? Alive,
    bool? Panic,
    long? Done)
{
    /// <summary>Substrings that must appear in some trace event of the step (model-side detail: policy actions, logs).</summary>
    public IReadOnlyList<string>? Trace { get; init; }
    /// <summary>Guest-side expectations: vm, alive, mces, offlined, killed, panicked, qemu_exited, poison_list, memory_lost.</summary>
    public IReadOnlyDictionary<string, string>? Guest { get; init; }
    /// <summary>Migration expectations: refused, granule, fake_poisoned, poison_set (equal|superset), faults.</summary>
    public IReadOnlyDictionary<string, string>? Migration { get; init; }
}

/// <summary>Expected per-hstate pool counters (sysfs hugepages-SIZEkB: nr, free, resv, surplus).</summary>
public sealed record HugepageExpect(long? Total, long? Free, long? Resv, long? Surp);

/// <summary>An expected signal: any field left null is not compared.</summary>
public sealed record SignalExpect(SourcePos Pos, string To, string Signo, string? SiCode, string? SiAddr, int? SiAddrLsb);

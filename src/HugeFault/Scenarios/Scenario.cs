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
    KernelRange Kernel,
    string? Notes,
    HostSpec Host,
    IReadOnlyList<ProcessSpec> Processes,
    IReadOnlyList<Step> Steps)
{
    /// <summary>
    /// The scenario as run against kernel <paramref name="version"/>: the model follows that kernel's behaviour and
    /// each step's expectations are those for that kernel (<c>expect</c> with its matching <c>expect_kernel</c> entry applied).
    /// </summary>
    public Scenario ForKernel(Version version) => this with
    {
        Host = Host with { KernelVersion = version },
        Steps = Steps.Select(s => s.KernelExpects is null ? s : s with { Expect = s.ExpectFor(version), KernelExpects = null }).ToList(),
    };
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

/// <summary>
/// One step: an operation with its arguments as written (<see cref="Args"/>, for listings) and as its typed, validated
/// record (<see cref="Call"/>, what the runner executes), and what to expect after it.
/// </summary>
public sealed record Step(int Index, SourcePos Pos, string Op, IReadOnlyDictionary<string, Arg> Args, Expect? Expect, string? Note)
{
    /// <summary>The task the step runs in (<c>as:</c>), if the op takes one.</summary>
    public string? As { get; init; } = Args.TryGetValue("as", out var a) ? a.Text : null;

    /// <summary>The operation, parsed and validated at load time.</summary>
    public StepOp Call { get; init; } = new CheckOp();

    /// <summary><c>expect_kernel</c>: expectations that replace parts of <see cref="Expect"/> on the kernels of their range (first match wins).</summary>
    public IReadOnlyList<(KernelRange Range, Expect Expect)>? KernelExpects { get; init; }

    /// <summary>The expectations on kernel <paramref name="version"/>.</summary>
    public Expect? ExpectFor(Version version)
    {
        var hit = KernelExpects?.FirstOrDefault(k => k.Range.Contains(version));
        if (hit is not { Expect: { } over }) return Expect;
        return Expect is null ? over : Expect.Merge(over);
    }
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
    /// <summary><c>ret: {at_least, at_most, one_of}</c> instead of one value.</summary>
    public NumExpect? RetRule { get; init; }
    /// <summary><c>errno: [EBUSY, ENOMEM]</c>: any of these.</summary>
    public IReadOnlyList<string>? ErrnoOneOf { get; init; }
    /// <summary><c>outcome: [ok, "SIGBUS BUS_MCEERR_AR"]</c>: any of these (prefixes).</summary>
    public IReadOnlyList<string>? OutcomeOneOf { get; init; }
    /// <summary><c>done: {at_least: …}</c>.</summary>
    public NumExpect? DoneRule { get; init; }
    /// <summary>Counters given as rules: meminfo names (HardwareCorrupted, HugePages_Free, …) and hugepages "1G.free", "2M.total", ….</summary>
    public IReadOnlyDictionary<string, NumExpect>? CounterRules { get; init; }
    /// <summary><c>kpageflags: [{pfn: $p+5, has: [HWPOISON], lacks: [HUGE]}]</c>.</summary>
    public IReadOnlyList<PageFlagsExpect>? PageFlags { get; init; }
    /// <summary>On a pfn_of step: <c>pfn: {changed_from: $p}</c> or <c>{same_as: $p}</c>.</summary>
    public PfnExpect? Pfn { get; init; }
    /// <summary><c>dead: {B: SIGBUS}</c>: how each named process has ended so far (SIGBUS, SIGKILL, exit, or alive).</summary>
    public IReadOnlyDictionary<string, string>? Dead { get; init; }

    /// <summary>These expectations with every key <paramref name="o"/> states replaced by its value (maps: key by key).</summary>
    public Expect Merge(Expect o)
    {
        static IReadOnlyDictionary<string, T>? M<T>(IReadOnlyDictionary<string, T>? a, IReadOnlyDictionary<string, T>? b)
        {
            if (a is null || b is null) return b ?? a;
            var d = a.ToDictionary(kv => kv.Key, kv => kv.Value);
            foreach (var (k, v) in b) d[k] = v;
            return d;
        }
        bool ret = o.Ret is not null || o.RetRule is not null, errno = o.Errno is not null || o.ErrnoOneOf is not null;
        bool outcome = o.Outcome is not null || o.OutcomeOneOf is not null, done = o.Done is not null || o.DoneRule is not null;
        return this with
        {
            Ret = ret ? o.Ret : Ret, RetRule = ret ? o.RetRule : RetRule,
            Errno = errno ? o.Errno : Errno, ErrnoOneOf = errno ? o.ErrnoOneOf : ErrnoOneOf,
            Signals = o.Signals ?? Signals, SignalsExact = o.Signals is not null ? o.SignalsExact : SignalsExact,
            MemInfo = M(MemInfo, o.MemInfo), HugePages = M(HugePages, o.HugePages), CounterRules = M(CounterRules, o.CounterRules),
            Log = o.Log ?? Log, NoLog = o.NoLog ?? NoLog, Data = o.Data ?? Data,
            Outcome = outcome ? o.Outcome : Outcome, OutcomeOneOf = outcome ? o.OutcomeOneOf : OutcomeOneOf,
            Done = done ? o.Done : Done, DoneRule = done ? o.DoneRule : DoneRule,
            Alive = M(Alive, o.Alive), Panic = o.Panic ?? Panic, Trace = o.Trace ?? Trace, Guest = M(Guest, o.Guest), Migration = M(Migration, o.Migration),
            PageFlags = o.PageFlags ?? PageFlags, Pfn = o.Pfn ?? Pfn, Dead = M(Dead, o.Dead),
        };
    }
}

/// <summary>Expected per-hstate pool counters (sysfs hugepages-SIZEkB: nr, free, resv, surplus).</summary>
public sealed record HugepageExpect(long? Total, long? Free, long? Resv, long? Surp);

/// <summary>An expected signal: any field left null is not compared.</summary>
public sealed record SignalExpect(SourcePos Pos, string To, string Signo, string? SiCode, string? SiAddr, int? SiAddrLsb);

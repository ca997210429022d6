using HugeFault.Scenarios;

namespace HugeFault.Tests.Scenarios;

/// <summary>The scenario format's additions for the peer-suite ports: rules, threads, deaths, page flags, shm, uffd.</summary>
public class FormatGrowthTests
{
    private static (Scenario? Sc, IReadOnlyList<ScenarioError> Errors) Parse(string steps, string procs = "[A]") =>
        ScenarioParser.Parse("t.yaml", $"name: t\nhost: {{memory: 4G, hugepages: {{2M: 4}}}}\nprocesses: {procs}\nsteps:\n{steps}");

    private static ScenarioRun Run(string steps, string procs = "[A]")
    {
        var (sc, errs) = Parse(steps, procs);
        Assert.True(errs.Count == 0, string.Join("\n", errs));
        return ScenarioRunner.Run(sc!);
    }

    private const string Poisoned2M = """
          - memfd_create: {as: A, name: g, flags: [MFD_HUGETLB], fd: g}
          - ftruncate: {as: A, fd: g, length: 2M}
          - mmap: {as: A, length: 2M, flags: [MAP_SHARED], fd: g, name: a}
          - store: {as: A, map: a, offset: 0, length: 4K, pattern: p1}
          - pfn_of: {as: A, map: a, offset: 0x5000, save: x}
        """;

    [Fact]
    public void At_least_and_one_of_rules_pass_and_fail_as_written()
    {
        var ok = Run(Poisoned2M + "\n" + """
              - madvise: {as: A, map: a, offset: 0x5000, length: 4K, advice: MADV_HWPOISON}
                expect: {ret: {one_of: [0, -1]}, meminfo: {HardwareCorrupted: {at_least: 4, at_most: 4}}, errno: [EBUSY, EIO, none]}
            """);
        Assert.True(ok.Passed, string.Join("\n", ok.Failures));
        var bad = Run(Poisoned2M + "\n" + """
              - madvise: {as: A, map: a, offset: 0x5000, length: 4K, advice: MADV_HWPOISON}
                expect: {ret: {at_least: 1}, meminfo: {HardwareCorrupted: {one_of: [8, 12]}}}
            """);
        Assert.Contains(bad.Failures, f => f.Contains("ret: expected at least 1, got 0"));
        Assert.Contains(bad.Failures, f => f.Contains("HardwareCorrupted: expected one of 8, 12 kB, got 4 kB"));
    }

    [Fact]
    public void Kpageflags_show_the_poisoned_raw_page_and_its_folio()
    {
        var run = Run(Poisoned2M + "\n" + """
              - madvise: {as: A, map: a, offset: 0x5000, length: 4K, advice: MADV_HWPOISON}
                expect: {kpageflags: [{pfn: $x, has: [HWPOISON, HUGE, COMPOUND_TAIL], lacks: [BUDDY, COMPOUND_HEAD]}]}
            """);
        Assert.True(run.Passed, string.Join("\n", run.Failures));
        Assert.Single(run.Steps[^1].PageFlags);
    }

    [Fact]
    public void A_process_without_a_sigbus_handler_dies_and_its_later_steps_are_skipped()
    {
        var run = Run("""
              - mmap: {as: B, length: 4K, flags: [MAP_PRIVATE, MAP_ANONYMOUS], name: m}
              - store: {as: B, map: m, offset: 0, length: 4K, pattern: p1}
              - madvise: {as: B, map: m, offset: 0, length: 4K, advice: MADV_HWPOISON}
                expect: {dead: {B: SIGBUS, A: alive}}
              - load: {as: B, map: m, offset: 0, length: 1}
              - check:
                expect: {dead: {B: SIGBUS}}
            """, "[A, {name: B, sigbus: default}]");
        Assert.True(run.Passed, string.Join("\n", run.Failures));
        Assert.Equal("SIGBUS", run.Steps[2].Deaths["B"]);
        Assert.StartsWith("skipped: process 'B' is dead", run.Steps[3].Summary);
    }

    [Fact]
    public void A_sigbus_default_kills_every_thread_of_the_process()
    {
        var run = Run("""
              - thread: {as: B, name: T}
              - mmap: {as: T, length: 4K, flags: [MAP_PRIVATE, MAP_ANONYMOUS], name: m}
              - store: {as: T, map: m, offset: 0, length: 4K, pattern: p1}
              - madvise: {as: T, map: m, offset: 0, length: 4K, advice: MADV_HWPOISON}
                expect: {dead: {B: SIGBUS, T: SIGBUS}}
            """, "[A, {name: B, sigbus: default}]");
        Assert.True(run.Passed, string.Join("\n", run.Failures));
    }

    [Fact]
    public void A_sysv_hugetlb_segment_reserves_at_shmget_and_is_destroyed_after_rmid_and_detach()
    {
        var run = Run("""
              - shmget: {as: A, shm: s, size: 3M, flags: [SHM_HUGETLB]}
                expect: {hugepages: {2M: {total: 4, free: 4, resv: 2}}}
              - shmat: {as: A, shm: s, name: m}
              - store: {as: A, map: m, offset: 0, length: 4M, pattern: p1}
                expect: {outcome: ok, hugepages: {2M: {free: 2, resv: 0}}}
              - shm_rmid: {as: A, shm: s}
                expect: {hugepages: {2M: {free: 2}}}
              - shmdt: {as: A, map: m}
                expect: {ret: 0, hugepages: {2M: {free: 4}}}
            """);
        Assert.True(run.Passed, string.Join("\n", run.Failures));
    }

    [Theory]
    [InlineData("  - thread: {as: A, name: A}\n", "already a process or thread")]
    [InlineData("  - check:\n    expect: {kpageflags: [{pfn: $nope, has: [HWPOISON]}]}\n", "variable '$nope' is not set")]
    [InlineData("  - pfn_of: {as: A, map: a, save: y}\n    expect: {kpageflags: [{pfn: $y, has: [SHINY]}]}\n", "unknown page flag 'SHINY'")]
    [InlineData("  - check:\n    expect: {dead: {A: maybe}}\n", "dead: 'maybe' is not")]
    [InlineData("  - check:\n    expect: {ret: {between: 3}}\n", "unknown key 'between'")]
    [InlineData("  - shmat: {as: A, shm: none, name: m}\n", "SysV segment 'none' is not defined")]
    public void Malformed_additions_are_reported_with_their_place(string steps, string message)
    {
        var (_, errs) = Parse("  - mmap: {as: A, length: 4K, flags: [MAP_PRIVATE, MAP_ANONYMOUS], name: a}\n" + steps);
        Assert.Contains(errs, e => e.Message.Contains(message) && e.Pos.Line > 0);
    }
}

using HugeFault.Scenarios;

namespace HugeFault.Tests.Scenarios;

/// <summary>Scenarios that validate but go wrong at run time fail their expectations; the runner never throws (found by <see cref="ScenarioFuzzTests"/>).</summary>
public class ScenarioRunnerRobustnessTests
{
    private static ScenarioRun Run(params string[] steps)
    {
        string[] lines =
        [
            "name: robustness",
            "host: {memory: 4G, hugepages: {2M: 0}}",
            "processes: [A]",
            "steps:",
            "  - memfd_create: {as: A, name: guest, flags: [MFD_HUGETLB, MFD_HUGE_2MB], fd: g}",
            "  - ftruncate: {as: A, fd: g, length: 2M}",
            .. steps,
        ];
        var (sc, errors) = ScenarioParser.Parse("r.yaml", string.Join("\n", lines));
        Assert.True(sc is not null, string.Join("\n", errors));
        return ScenarioRunner.Run(sc);
    }

    [Fact]
    public void A_step_on_a_mapping_whose_mmap_failed_returns_EFAULT_instead_of_crashing()
    {
        var run = Run(
            "  - mmap: {as: A, length: 2M, flags: [MAP_SHARED], fd: g, name: a}",
            "    expect: {errno: ENOMEM}",
            "  - store: {as: A, map: a, offset: 0, length: 1}",
            "    expect: {errno: EFAULT}",
            "  - pfn_of: {as: A, map: a, save: v}",
            "  - corrupt_pfn: {pfn: $v}");
        Assert.True(run.Passed, string.Join("\n", run.Failures));
        Assert.Equal("store = -1 EFAULT", run.Steps[3].Summary);
        Assert.Contains(run.Kernel.Trace.OfType<SyscallEvent>(), e => e.Call == "store" && e.Args.Contains("no such mapping (its mmap failed)"));
    }

    [Fact]
    public void A_pool_size_written_as_a_size_is_accepted_by_the_runner_as_well_as_the_parser()
    {
        var run = Run(
            "  - nr_hugepages: {size: 2M, value: 0x4}",
            "    expect: {hugepages: {2M: {total: 4, free: 4}}}");
        Assert.True(run.Passed, string.Join("\n", run.Failures));
    }

    [Fact]
    public void A_hardware_error_in_a_closed_file_returns_EBADF_instead_of_crashing()
    {
        var run = Run(
            "  - close: {as: A, fd: g}",
            "  - hw_error: {as: A, fd: g, offset: 0}",
            "    expect: {errno: EBADF}");
        Assert.True(run.Passed, string.Join("\n", run.Failures));
    }
}

using HugeFault.Scenarios;

namespace HugeFault.Tests.Scenarios;

/// <summary>Kernel ranges, per-kernel expectations and the model's kernel-version switches.</summary>
public class KernelRangeTests
{
    private static readonly Version V61 = new(6, 1), V612 = new(6, 12);

    private static Scenario Parse(string yaml)
    {
        var (sc, errs) = ScenarioParser.Parse("t.yaml", yaml);
        Assert.True(errs.Count == 0, string.Join("\n", errs));
        return sc!;
    }

    private static IReadOnlyList<ScenarioError> Errors(string yaml) => ScenarioParser.Parse("t.yaml", yaml).Errors;

    private const string Body = """
        host: {memory: 4G, hugepages: {2M: 2}}
        processes: [A]
        steps:
          - memfd_create: {as: A, name: g, flags: [MFD_HUGETLB, MFD_HUGE_2MB], fd: g}
          - ftruncate: {as: A, fd: g, length: 2M}
          - mmap: {as: A, length: 2M, flags: [MAP_SHARED], fd: g, name: a}
          - store: {as: A, map: a, offset: 0, length: 4K, pattern: p1}
          - madvise: {as: A, map: a, offset: 0x5000, length: 4K, advice: MADV_HWPOISON}
            expect:
              signals: [{to: A, si_code: BUS_MCEERR_AR, si_addr: a+0x5000, si_addr_lsb: 21}]
            expect_kernel:
              - kernel: "<6.11"
                signals: []
        """;

    [Theory]
    [InlineData("6.6", "6.1", false)]
    [InlineData("6.6", "6.12", true)]
    [InlineData("<6.6", "6.1", true)]
    [InlineData("<6.6", "6.6", false)]
    [InlineData("<=6.5", "6.5", true)]
    [InlineData(">=6.11", "6.12", true)]
    public void A_kernel_range_contains_the_series_it_names(string range, string kernel, bool inside)
        => Assert.Equal(inside, KernelRange.ParseText(range)!.Contains(Version.Parse(kernel)));

    [Fact]
    public void A_min_max_range_includes_both_ends_and_compares_series_only()
    {
        var sc = Parse("name: r\nkernel: {min: \"6.1\", max: \"6.5\"}\n" + Body.Replace("hugepages: {2M: 2}}", "hugepages: {2M: 2}, kernel_version: \"6.5\"}"));
        Assert.True(sc.Kernel.Contains(new Version(6, 1, 192)));
        Assert.True(sc.Kernel.Contains(new Version(6, 5)));
        Assert.False(sc.Kernel.Contains(new Version(6, 12)));
        Assert.Equal(new Version(6, 5), sc.Host.KernelVersion);
    }

    [Fact]
    public void Expect_kernel_replaces_the_named_keys_on_kernels_in_its_range()
    {
        var sc = Parse("name: k\n" + Body);
        Assert.Single(sc.ForKernel(V612).Steps[4].Expect!.Signals!);
        Assert.Empty(sc.ForKernel(V61).Steps[4].Expect!.Signals!);
        // and the model follows the kernel: 6.12 signals the injector, 6.1 does not
        Assert.True(ScenarioRunner.Run(sc.ForKernel(V612)).Passed);
        Assert.True(ScenarioRunner.Run(sc.ForKernel(V61)).Passed);
        var wrong = sc.ForKernel(V612) with { Host = sc.Host with { KernelVersion = V61 } };
        Assert.False(ScenarioRunner.Run(wrong with { Steps = wrong.Steps.Select(s => s with { KernelExpects = null }).ToList() }).Passed);
    }

    [Fact]
    public void A_kernel_version_outside_the_range_or_a_range_without_the_default_kernel_is_an_error()
    {
        Assert.Contains(Errors("name: k\nkernel: \"<6.6\"\n" + Body), e => e.Message.Contains("excludes the model's default kernel 6.12"));
        Assert.Contains(Errors("name: k\nkernel: \"6.6\"\n" + Body.Replace("hugepages: {2M: 2}}", "hugepages: {2M: 2}, kernel_version: \"6.1\"}")), e => e.Message.Contains("outside the scenario's kernel range"));
        Assert.Contains(Errors("name: k\nkernel: {min: \"6.12\", max: \"6.1\"}\n" + Body), e => e.Message.Contains("is above max"));
        Assert.Contains(Errors("name: k\nkernel: \"six\"\n" + Body), e => e.Message.Contains("is not a kernel version or range"));
    }

    public static TheoryData<string, string> MainlineOnEveryKernel()
    {
        var d = new TheoryData<string, string>();
        foreach (var n in BuiltinScenarios.Under("conformance/mainline/"))
            foreach (var k in new[] { "6.1", "6.12" })
                if (BuiltinScenarios.Load(n).Kernel.Contains(Version.Parse(k))) d.Add(n, k);
        return d;
    }

    [Theory]
    [MemberData(nameof(MainlineOnEveryKernel))]
    public void A_mainline_scenario_passes_on_the_model_of_every_kernel_in_its_range(string name, string kernel)
    {
        var run = ScenarioRunner.Run(BuiltinScenarios.Load(name).ForKernel(Version.Parse(kernel)));
        Assert.True(run.Passed, $"{name} on {kernel}:\n" + string.Join("\n", run.Failures));
    }
}

using HugeFault.Policies;
using HugeFault.Scenarios;
using HugeFault.Tests.Scenarios;

namespace HugeFault.Tests.Policies;

/// <summary>
/// The proposal policies against their authors' own selftests (scenarios/peers/hgm-v2-selftest, mfr-v3-selftest):
/// each passes under the policy that models the posted series, and the HGM hwpoison test tells HGM as posted from HGM as intended.
/// </summary>
public class AuthorSelftestTests
{
    private static Scenario Load(string rel)
    {
        var (sc, errs) = ScenarioParser.ParseFile(Path.Combine(RepoPaths.Root, "scenarios/peers", rel));
        Assert.Empty(errs);
        return sc!;
    }

    [Theory]
    [InlineData("hgm-v2-selftest/hugetlb-hgm-regular.yaml")]
    [InlineData("hgm-v2-selftest/hugetlb-hgm-uffd-wp.yaml")]
    [InlineData("hgm-v2-selftest/hugetlb-hgm-hwpoison.yaml")]
    [InlineData("mfr-v3-selftest/hugetlb-mfr-2M-3.yaml")]
    [InlineData("mfr-v3-selftest/hugetlb-mfr-2M-8.yaml")]
    [InlineData("mfr-v3-selftest/hugetlb-mfr-1G-1.yaml")]
    public void An_authors_selftest_passes_under_the_policy_of_its_series(string rel)
    {
        var run = ScenarioRunner.Run(Load(rel));
        Assert.True(run.Passed, string.Join("\n", run.Failures));
    }

    [Fact]
    public void The_hgm_hwpoison_selftest_fails_under_hgm_as_intended_because_only_4K_stays_poisoned()
    {
        var run = ScenarioRunner.Run(Load("hgm-v2-selftest/hugetlb-hgm-hwpoison.yaml"), "hgm");
        Assert.False(run.Passed);
        Assert.Contains(run.Failures, f => f.Contains("outcome: expected SIGBUS BUS_MCEERR_AR, got ok"));
    }

    [Fact]
    public void The_mfr_selftest_fails_under_mainline_which_rejects_MFD_MF_KEEP_UE_MAPPED()
    {
        var run = ScenarioRunner.Run(Load("mfr-v3-selftest/hugetlb-mfr-2M-3.yaml"), "mainline");
        Assert.False(run.Passed);
    }

    [Fact]
    public void Hgm_is_labelled_an_extrapolation_and_hgm_v2_as_posted()
    {
        Assert.StartsWith("extrapolation:", RecoveryPolicies.Provenance("hgm"));
        Assert.StartsWith("as posted:", RecoveryPolicies.Provenance("hgm-v2"));
        Assert.StartsWith("as posted:", RecoveryPolicies.Provenance("keep-mapped"));
        Assert.Contains("extrapolation", RecoveryPolicies.Summary("hgm"));
        Assert.Contains("hgm-v2", RecoveryPolicies.Names);
    }
}

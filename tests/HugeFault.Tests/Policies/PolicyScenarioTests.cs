using HugeFault.Policies;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Policies;

public class PolicyScenarioTests
{
    public static TheoryData<string> PolicyAndVmScenarios()
    {
        var d = new TheoryData<string>();
        foreach (var n in BuiltinScenarios.Under("policies/").Concat(BuiltinScenarios.Under("vm/"))) d.Add(n);
        return d;
    }

    [Theory]
    [MemberData(nameof(PolicyAndVmScenarios))]
    public void Every_policy_and_vm_scenario_holds_under_its_own_policy(string name)
    {
        var run = ScenarioRunner.Run(BuiltinScenarios.Load(name));
        Assert.True(run.Passed, string.Join("\n", run.Failures));
    }

    [Fact]
    public void Every_policy_of_the_design_debate_is_registered()
    {
        Assert.Equal(["mainline", "hgm", "hgm-v2", "hgm-full-split", "vma-convert", "userspace-migrate", "repair", "copy-around", "keep-mapped"], RecoveryPolicies.Names);
    }

    [Fact]
    public void The_shared_gigabyte_scenario_loses_a_gigabyte_per_mapper_under_mainline_and_4K_under_hgm()
    {
        var sc = BuiltinScenarios.Load("policies/shared-1g-error-in-middle.yaml");
        var rows = Comparison.Compare([sc], ["mainline", "hgm", "hgm-full-split"]);
        Assert.Equal(2L << 30, rows[0].InaccessibleBytes);
        Assert.Equal(2 * 4096L, rows[1].InaccessibleBytes);
        // the minimal split needs one PMD table and one PTE table per mapper; the full split 512 PTE tables + 1 PMD table
        Assert.Equal(rows[0].PageTablePeakBytes + 2 * 2 * 4096, rows[1].PageTablePeakBytes);
        Assert.Equal(rows[0].PageTablePeakBytes + 2 * (2L << 20) + 2 * 4096, rows[2].PageTablePeakBytes);
    }

    [Fact]
    public void Expectations_written_for_hgm_fail_under_mainline()
    {
        var sc = BuiltinScenarios.Load("policies/shared-1g-error-in-middle.yaml");
        Assert.False(ScenarioRunner.Run(sc, "mainline").Passed);
        Assert.True(ScenarioRunner.Run(sc, "hgm").Passed);
    }

    [Fact]
    public void Mainline_rejects_the_keep_mapped_memfd_flag_and_keep_mapped_accepts_it()
    {
        foreach (var (policy, ok) in new[] { ("mainline", false), ("keep-mapped", true) })
        {
            var k = new Kernel(new KernelConfig { MemoryBytes = 4UL << 30, HugePages2M = 1, Policy = policy });
            var t = k.Spawn("A");
            var r = k.MemfdCreate(t, "x", Memfd.MFD_HUGETLB | Memfd.MFD_MF_KEEP_UE_MAPPED);
            Assert.Equal(ok, !r.Failed);
        }
    }
}

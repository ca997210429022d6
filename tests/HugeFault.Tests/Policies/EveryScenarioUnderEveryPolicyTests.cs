using HugeFault.Policies;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Policies;

/// <summary>
/// Every built-in scenario runs to its end under every policy (compare does exactly that): a policy may fail a
/// scenario's expectations, never crash the model. copy-around on MADV_HWPOISON'd anonymous hugetlb once left a
/// dissolved folio on the pool's free list, and the next fault mapped memory that no folio owned.
/// </summary>
public class EveryScenarioUnderEveryPolicyTests
{
    public static TheoryData<string> Policies() => new(RecoveryPolicies.Names);

    [Theory]
    [MemberData(nameof(Policies))]
    public void Every_builtin_scenario_runs_to_its_end(string policy)
    {
        var crashed = new List<string>();
        foreach (var name in BuiltinScenarios.Names)
        {
            var sc = BuiltinScenarios.Load(name);
            try
            {
                var run = ScenarioRunner.Run(sc, policy);
                Assert.Equal(sc.Steps.Count, run.Steps.Count);
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException) { crashed.Add($"{name}: {e.GetType().Name}: {e.Message}"); }
        }
        Assert.True(crashed.Count == 0, string.Join("\n", crashed));
    }
}

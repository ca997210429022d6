using HugeFault.Policies;

namespace HugeFault.Tests.Policies;

/// <summary>One policy, one file: the registry is what the policies' own descriptors say, and nothing else.</summary>
public class PolicyRegistryTests
{
    [Fact]
    public void Every_listed_policy_is_made_by_its_own_descriptor_and_answers_to_its_name()
    {
        foreach (var n in RecoveryPolicies.Names)
        {
            var d = RecoveryPolicies.Get(n);
            Assert.Equal(n, d.Name);
            Assert.Equal(n, RecoveryPolicies.Create(n, new Dictionary<string, string>()).Name);
            Assert.Equal(d.Provenance.StartsWith("extrapolation", StringComparison.Ordinal), RecoveryPolicies.Describe(n).Extrapolation);
        }
    }

    [Fact]
    public void Every_policy_class_of_the_library_has_a_descriptor_in_its_own_file()
    {
        var made = RecoveryPolicies.Names.Select(n => RecoveryPolicies.Create(n, new Dictionary<string, string>()).GetType()).ToHashSet();
        var classes = typeof(IRecoveryPolicy).Assembly.GetTypes().Where(t => typeof(IRecoveryPolicy).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false }).ToList();
        Assert.NotEmpty(classes);
        foreach (var c in classes)
        {
            Assert.Contains(c, made);
            Assert.Contains(c.GetFields(), f => f.FieldType == typeof(PolicyDescriptor) && f.IsStatic && f.IsInitOnly);
        }
    }

    [Fact]
    public void The_baseline_comes_first_and_the_debate_order_is_kept()
    {
        var names = RecoveryPolicies.Names.ToList();
        Assert.Equal(RecoveryPolicies.Baseline, names[0]);
        Assert.True(names.IndexOf("hgm") < names.IndexOf("hgm-full-split"));
        Assert.Equal(names.Count, names.Distinct().Count());
    }
}

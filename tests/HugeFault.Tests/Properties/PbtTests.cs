using CsCheck;

namespace HugeFault.Tests.Properties;

/// <summary>A property failure is reproducible: the seed it prints regenerates the failing case, whatever its iteration.</summary>
public class PbtTests
{
    [Fact]
    public void A_failure_at_a_late_iteration_prints_a_seed_that_regenerates_its_case()
    {
        var gen = Gen.Int[0, 1_000_000];
        // fails only for a rare input, so the failing case is far from the first iteration
        var e = Assert.Throws<PropertyFailedException>(() => Pbt.Run(gen, x => Assert.True(x % 997 != 0), iter: 100_000, stream: 99));
        var m = System.Text.RegularExpressions.Regex.Match(e.Message, @"^iteration (\d+) \(seed (\S+);");
        Assert.True(m.Success, e.Message);
        Assert.True(int.Parse(m.Groups[1].Value) > 0);
        int again = gen.Generate(PCG.Parse(m.Groups[2].Value), null, out _);
        Assert.Equal(0, again % 997);
        // and the same run fails at the same iteration with the same seed
        var e2 = Assert.Throws<PropertyFailedException>(() => Pbt.Run(gen, x => Assert.True(x % 997 != 0), iter: 100_000, stream: 99));
        Assert.Equal(m.Value, System.Text.RegularExpressions.Regex.Match(e2.Message, @"^iteration (\d+) \(seed (\S+);").Value);
    }
}

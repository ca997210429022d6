using System.Text.Json.Nodes;
using HugeFault.Mm;
using HugeFault.Oracle;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Oracle;

public class OraclePlanTests
{
    private static Scenario Load(string key)
    {
        var (sc, errs) = ScenarioParser.ParseFile(Path.Combine(OracleDiffTests.Repo, "scenarios/conformance/mainline", key + ".yaml"));
        Assert.Empty(errs);
        return sc!;
    }

    [Theory]
    [InlineData("12-historical-read-eio", "needs kernel <6.6")]
    [InlineData("20a-unpoison-blocked-after-real-error", "model-only operation 'hw_error'")]
    [InlineData("24-kvm-guest-touches-poisoned-page", "model-only operation")]
    public void Scenarios_a_real_kernel_cannot_run_say_why(string key, string why)
        => Assert.Contains(why, OraclePlan.WhyNotReal(Load(key)));

    [Fact]
    public void Runnable_scenarios_have_no_reason()
    {
        Assert.Null(OraclePlan.WhyNotReal(Load("21-uffdio-poison")));
        Assert.Null(OraclePlan.WhyNotReal(Load("05-inuse-shared-injector")));
    }

    [Fact]
    public void The_plan_resolves_sizes_flags_and_patterns_to_numbers()
    {
        var sc = Load("21-uffdio-poison");
        var plan = OraclePlan.Build(sc);
        Assert.Equal("21-uffdio-poison", (string)plan["name"]!);
        Assert.Equal("default_hugepagesz=2M hugepagesz=1G hugepages=0 hugepagesz=2M hugepages=4", (string)plan["bootargs"]!);
        var steps = (JsonArray)plan["steps"]!;
        var mmap = steps[0]!["args"]!;
        Assert.Equal(8L << 20, (long)mmap["length"]!);
        Assert.Equal(0x2 | 0x20 | 0x40000 | (21L << 26), (long)mmap["flags"]!);
        Assert.Equal(3, (long)mmap["prot"]!);
        Assert.Equal(1L << 14, (long)steps[1]!["args"]!["features"]!);
        var copy = steps[6]!["args"]!;
        Assert.Equal("uffdio_copy", (string)steps[6]!["op"]!);
        Assert.True((bool)copy["pattern"]!["zero"]!);
        var load = steps[7]!["args"]!;
        Assert.True((bool)load["check"]!["zero"]!);
        Assert.Equal((4L << 20) + 0x1234, (long)steps[9]!["args"]!["offset"]!);
        Assert.Equal(["A"], ((JsonArray)plan["process_names"]!).Select(n => (string)n!));
    }

    [Fact]
    public void Stores_carry_the_pattern_seed_the_model_uses_and_forks_name_every_process()
    {
        var sc = Load("05-inuse-shared-injector-2m");
        var plan = OraclePlan.Build(sc);
        var store = ((JsonArray)plan["steps"]!).Single(s => (string)s!["op"]! == "store")!["args"]!;
        Assert.Equal(ContentTag.PatternSeed("p1"), (ulong)store["pattern"]!["seed"]!);
        Assert.Equal(["A", "B"], ((JsonArray)plan["process_names"]!).Select(n => (string)n!));
        Assert.Equal("4G", OraclePlan.GuestMemory(sc));
        Assert.Equal("6G", OraclePlan.GuestMemory(Load("05-inuse-shared-injector")));
    }
}

using HugeFault.Fleet;

namespace HugeFault.Tests.Fleet;

/// <summary>
/// Hostile and extreme fleet configs (issue 12): every one is an exit-2 error of one line per problem with
/// file:line:column, capped, before any server runs; never an internal error, an out-of-memory abort or a hang.
/// </summary>
public class FleetConfigHostileTests
{
    private static (int Exit, string Out, string Err) Invoke(params string[] args) => FleetCommandTests.Invoke(args);

    private static string Temp(string text)
    {
        string dir = Path.Combine(Path.GetTempPath(), "hugefault-fleet-hostile", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "c.yaml");
        File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("run:\n  : 100\n")]                     // an empty key
    [InlineData(": 100\n")]
    [InlineData("run: {servers: 10\n")]                  // unterminated flow mappings and sequences
    [InlineData("run: {servers: 10, policies: [mainline\n")]
    [InlineData("run: {servers: 10\nfaults: {fit_scale: 2}\n")]
    [InlineData("{")]
    [InlineData("run:\n  policies: [mainline, hgm\nfaults:\n  fit_scale: 2\n")]
    public void Malformed_yaml_is_a_located_syntax_error_with_exit_2(string yaml)
    {
        var (config, errors) = FleetConfigLoader.Load(yaml, "c.yaml");
        Assert.Null(config);
        var e = Assert.Single(errors);
        Assert.Matches(@"^c\.yaml:\d+:\d+: (YAML syntax error: |empty key)", e);
        Assert.DoesNotContain("\n", e);
        var (exit, _, err) = Invoke("fleet", Temp(yaml), "--servers", "10");
        Assert.Equal(2, exit);
        Assert.DoesNotContain("internal error", err);
    }

    [Theory]
    [InlineData("workload:\n  pool_occupancy: 0\n", "c.yaml:2:3: workload.pool_occupancy must be in (0, 1]", "no VM-years")]
    [InlineData("faults:\n  fit_scale: 1e6\n", "c.yaml:2:3: faults.fit_scale must be in (0, 100]", "quadratic")]
    [InlineData("workload:\n  vm_lifetime_days: 1e-7\n", "c.yaml:2:3: workload.vm_lifetime_days must be in [0.0417, 100000) days", "1/lifetime")]
    public void A_value_the_model_cannot_honour_is_rejected_with_its_reason(string yaml, string start, string reason)
    {
        var (config, errors) = FleetConfigLoader.Load(yaml, "c.yaml");
        Assert.Null(config);
        var e = Assert.Single(errors);
        Assert.StartsWith(start, e);
        Assert.Contains(reason, e);
        var (exit, _, err) = Invoke("fleet", Temp(yaml), "--servers", "10", "--json");
        Assert.Equal(2, exit);
        Assert.Contains(start, err);
    }

    [Fact]
    public void The_largest_allowed_fit_scale_and_shortest_lifetime_still_run()
    {
        var cfg = new FleetConfig
        {
            Servers = 20, Seed = 3, Policies = ["mainline"],
            Faults = new FleetFaultConfig { FitScale = FleetConfig.MaxFitScale },
            Workload = new FleetWorkloadConfig { VmLifetimeDays = FleetConfig.MinVmLifetimeDays },
        };
        Assert.Empty(cfg.Validate());
        var r = FleetMonteCarlo.Run(cfg, new FleetRunOptions(1, FleetShard.Whole));
        Assert.Equal(20, r.Tally.Servers);
    }

    [Fact]
    public void A_huge_policy_list_gives_a_capped_list_of_errors()
    {
        var names = Enumerable.Range(0, 300_000).Select(i => $"p{i}");
        string yaml = "run:\n  policies: [" + string.Join(", ", names) + "]\n";
        var (config, errors) = FleetConfigLoader.Load(yaml, "c.yaml");
        Assert.Null(config);
        Assert.InRange(errors.Count, 2, FleetConfigLoader.MaxErrors + 1);
        Assert.Contains(errors, e => e.Contains("more unknown policies", StringComparison.Ordinal) || e.Contains("more problem", StringComparison.Ordinal));
        Assert.Contains("299,990", string.Join("\n", errors));
    }

    [Fact]
    public void Thousands_of_unknown_keys_give_a_capped_list_of_errors()
    {
        string yaml = "run:\n" + string.Concat(Enumerable.Range(0, 5000).Select(i => $"  k{i}: 1\n"));
        var (_, errors) = FleetConfigLoader.Load(yaml, "c.yaml");
        Assert.Equal(FleetConfigLoader.MaxErrors + 1, errors.Count);
        Assert.Equal("c.yaml: … and 4,980 more problems (fix the ones above first)", errors[^1]);
    }
}

public class FleetRowStreamTests
{
    [Fact]
    public void Rows_stream_to_a_sink_in_server_order_and_equal_the_collected_rows_whatever_the_threads()
    {
        var cfg = new FleetConfig { Servers = 3 * FleetMonteCarlo.BlockSize + 77, Seed = 9, Faults = new FleetFaultConfig { FitScale = 8 }, Policies = ["mainline", "hgm"] };
        var collected = FleetMonteCarlo.Run(cfg, new FleetRunOptions(2, FleetShard.Whole, CollectRows: true)).Rows;
        Assert.NotEmpty(collected);
        foreach (int threads in new[] { 1, 3 })
        {
            var streamed = new List<FleetServerRow>();
            var r = FleetMonteCarlo.Run(cfg, new FleetRunOptions(threads, FleetShard.Whole, RowSink: streamed.Add));
            Assert.Empty(r.Rows); // nothing kept per server
            Assert.Equal(collected.Select(x => x.Server), streamed.Select(x => x.Server));
            Assert.Equal(collected.Select(x => x.VmsKilled.Sum()), streamed.Select(x => x.VmsKilled.Sum()));
        }
    }
}

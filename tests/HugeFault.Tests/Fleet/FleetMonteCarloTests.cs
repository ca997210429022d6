using HugeFault.Fleet;
using HugeFault.Fleet.Dram;
using HugeFault.Simulation;

namespace HugeFault.Tests.Fleet;

public class FleetMonteCarloTests
{
    /// <summary>A busy fleet: 8× the FIT so a few thousand servers see plenty of UEs.</summary>
    private static FleetConfig Busy(long servers = 800, ulong seed = 11) => new()
    {
        Servers = servers,
        Seed = seed,
        Faults = new FleetFaultConfig { FitScale = 8 },
    };

    [Fact]
    public void The_fault_free_fraction_matches_the_closed_form_with_heterogeneity_integrated_out()
    {
        var cfg = new FleetConfig { Servers = 200_000, Seed = 5, Policies = ["mainline"] };
        var r = FleetMonteCarlo.Run(cfg, new FleetRunOptions(2, FleetShard.Whole));
        double p0 = r.Model.ZeroProbabilityPerServer;
        var observed = new ProportionEstimate(r.Tally.Servers - r.Tally.ServersTouched, r.Tally.Servers);
        Assert.True(observed.Wilson95.Contains(p0) || Math.Abs(observed.Value - p0) < 0.004, $"observed {observed.Value}, closed form {p0}");
    }

    [Theory]
    [InlineData(Heterogeneity.None, 1.0)]
    [InlineData(Heterogeneity.LogNormal, 1.5)]
    [InlineData(Heterogeneity.Gamma, 0.3)]
    public void Mean_faults_per_server_match_the_poisson_closed_form(Heterogeneity h, double parameter)
    {
        var cfg = new FleetConfig
        {
            Servers = 100_000,
            Seed = 9,
            Faults = new FleetFaultConfig { Heterogeneity = h, HeterogeneityParameter = parameter, DepositedPerServerYear = 0 },
            Policies = ["mainline"],
        };
        var r = FleetMonteCarlo.Run(cfg, new FleetRunOptions(2, FleetShard.Whole));
        // Devices × FIT × 1e-9 × hours: 16 DIMMs × 36 devices × 109.45 FIT × 8760 h; the multipliers have mean 1.
        double expected = cfg.Server.Dimms * cfg.Server.RanksPerDimm * cfg.Server.ChipsPerRank * FitProfile.Ddr4Field.Total * 1e-9 * cfg.Hours;
        var m = r.Tally.ServerMean(ServerMetric.Faults);
        double slack = h == Heterogeneity.None ? 0 : 0.02 * expected; // heavy tails: CI of the mean is itself noisy
        Assert.True(m.Lower - slack <= expected && expected <= m.Upper + slack, $"mean {m.Mean} [{m.Lower}, {m.Upper}] vs {expected}");
    }

    [Fact]
    public void Heterogeneity_makes_errors_per_server_heavy_tailed()
    {
        static (double TopShare, double Dispersion, double TailP) Tail(Heterogeneity h)
        {
            var cfg = new FleetConfig
            {
                Servers = 30_000, Seed = 4, Years = 5,
                Faults = new FleetFaultConfig { Heterogeneity = h, DepositedPerServerYear = 0, Replacement = ReplacementPolicy.Never },
                Policies = ["mainline"],
            };
            var sim = new FleetServerSimulator(new FleetModel(cfg));
            var counts = new long[cfg.Servers];
            for (long i = 0; i < cfg.Servers; i++)
                counts[i] = sim.Simulate(i) ? sim.Outcome.Server[(int)ServerMetric.Faults] : 0;
            Array.Sort(counts);
            double total = counts.Sum();
            double top = counts.AsSpan(counts.Length - counts.Length / 100).ToArray().Sum();
            double mean = total / counts.Length;
            double var = counts.Select(c => (c - mean) * (c - mean)).Sum() / (counts.Length - 1);
            return (top / total, var / mean, counts.Count(c => c >= 10) / (double)counts.Length);
        }
        var flat = Tail(Heterogeneity.None);
        var heavy = Tail(Heterogeneity.LogNormal);
        // Poisson: variance = mean. Per-DIMM lognormal σ = 1.5 over 16 DIMMs: over-dispersed, the top 1 % of servers hold
        // twice the share, and ten-fault servers are far more common (measured: share 5.8 % vs 2.9 %, dispersion 2.4).
        Assert.InRange(flat.Dispersion, 0.9, 1.1);
        Assert.True(heavy.Dispersion > 2 * flat.Dispersion, $"dispersion {heavy.Dispersion} vs {flat.Dispersion}");
        Assert.True(heavy.TopShare > 1.5 * flat.TopShare, $"top-1% share {heavy.TopShare} vs {flat.TopShare}");
        Assert.True(heavy.TailP > 5 * flat.TailP, $"P(≥10 faults) {heavy.TailP} vs {flat.TailP}");
    }

    [Fact]
    public void The_same_seed_gives_identical_tallies_whatever_the_thread_count()
    {
        var cfg = Busy();
        var one = FleetMonteCarlo.Run(cfg, new FleetRunOptions(1, FleetShard.Whole));
        var two = FleetMonteCarlo.Run(cfg, new FleetRunOptions(2, FleetShard.Whole));
        var four = FleetMonteCarlo.Run(cfg, new FleetRunOptions(4, FleetShard.Whole));
        Assert.True(one.Tally.SameAs(two.Tally));
        Assert.True(one.Tally.SameAs(four.Tally));
        Assert.True(one.Tally.ServersTouched > 0);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(7)]
    public void Merging_N_shards_gives_exactly_the_counts_of_one_run(int shards)
    {
        var cfg = Busy(servers: 1001);
        var whole = FleetMonteCarlo.Run(cfg, new FleetRunOptions(2, FleetShard.Whole));
        var merged = new FleetTally(cfg.Policies, whole.Model.Bins);
        long covered = 0;
        for (int k = 0; k < shards; k++)
        {
            var part = FleetMonteCarlo.Run(cfg, new FleetRunOptions(1, new FleetShard(k, shards)));
            covered += part.EndServer - part.FirstServer;
            // Through the JSON a shard would write, to check the raw accumulators survive the round trip.
            var (back, error) = FleetReport.FromJson(new FleetReport(Context(part), part.Tally).ToJson());
            Assert.Null(error);
            merged.Merge(back!.Tally);
        }
        Assert.Equal(cfg.Servers, covered);
        Assert.True(merged.SameAs(whole.Tally));
        Assert.True(whole.Tally.Sum[0, (int)PolicyMetric.UeEvents] > 0);
    }

    private static FleetContext Context(FleetResult r) =>
        new(r.Config.Seed, r.Config.Servers, r.Config.Years, r.Model.MeanConcurrentVms, $"{r.Shard.Index}/{r.Shard.Count}", "test", r.Model.ZeroProbabilityPerServer);

    [Fact]
    public void All_policies_see_the_same_faults_and_patterns_and_differences_are_paired()
    {
        var cfg = Busy();
        var r = FleetMonteCarlo.Run(cfg, new FleetRunOptions(2, FleetShard.Whole));
        var t = r.Tally;
        int m = t.BaselineIndex;
        Assert.Equal(0, m);
        for (int p = 0; p < t.Policies.Length; p++)
        {
            // The paired difference sum is exactly the difference of the sums.
            for (int k = 0; k < ServerOutcome.PolicyMetrics; k++)
                Assert.Equal(t.Sum[p, k] - t.Sum[m, k], t.DiffSum[p, k]);
        }
        // Mainline loses whole gigabytes; HGM only 4 KiB pages: guest memory lost must not be larger under hgm.
        int hgm = Array.IndexOf(t.Policies, "hgm");
        Assert.True(t.Sum[hgm, (int)PolicyMetric.VmsKilled] < t.Sum[m, (int)PolicyMetric.VmsKilled]);
        Assert.True(t.Sum[hgm, (int)PolicyMetric.StrandedPageHours] <= t.Sum[m, (int)PolicyMetric.StrandedPageHours]);
    }

    [Fact]
    public void Uncorrectable_patterns_start_exactly_when_the_rank_evaluator_says_the_first_UE_appears()
    {
        foreach (var ecc in new[] { EccScheme.None, EccScheme.SecDed, EccScheme.Chipkill, EccScheme.Adddc })
        {
            var model = new DramRankModel(new DramGeometry(18, 4, 2, 16, 4096, 64), FitProfile.Jaguar, 2_000, 1, 24, new EccOptions(ecc, 0.2));
            var sampler = new RankFaultSampler(model);
            var evaluator = new RankEccEvaluator(model);
            var finder = new UePatternFinder(model);
            var faults = new DramFault[sampler.MaxFaultsPerTrial + 1];
            var patterns = new UePattern[4096];
            var rng = Xoshiro256StarStar.Create(77);
            int withUe = 0;
            for (int trial = 0; trial < 300; trial++)
            {
                int n = sampler.SampleTrial(ref rng, faults);
                var span = faults.AsSpan(0, n);
                double judged = evaluator.Judge(span).FirstUncorrectableHours;
                int found = finder.Find(span, patterns);
                Assert.True(found >= 0);
                double first = double.PositiveInfinity;
                for (int i = 0; i < found; i++) first = Math.Min(first, patterns[i].Start);
                Assert.Equal(judged, first);
                if (found > 0) withUe++;
            }
            Assert.True(withUe > 10, $"{ecc}: only {withUe} trials with a UE");
        }
    }

    [Fact]
    public void The_default_address_map_is_a_bijection_and_puts_a_row_in_one_gigabyte()
    {
        var server = new FleetServerConfig { Sockets = 1, ChannelsPerSocket = 2, RanksPerDimm = 2, Banks = 4, Rows = 64, Columns = 1024 };
        var map = new FleetAddressMap(server);
        var seen = new HashSet<ulong>();
        for (ulong line = 0; line < 1UL << map.LineBits; line++) Assert.True(seen.Add(map.LineToPhysical(line)));
        Assert.Equal((long)server.MemoryBytes, (long)seen.Count * 64);

        var big = new FleetAddressMap(new FleetServerConfig());
        var basis = new ulong[64];
        var inFrame = new ulong[64];
        // One row of one bank of one rank: 128 lines, 8-way channel interleave → 16 pages of 8 lines, in one 1 GiB frame.
        ulong rowWild = big.FieldMask(LineField.Column);
        var row = big.Analyze(big.Put(LineField.Row, 12345) | big.Put(LineField.Bank, 3), rowWild, basis, inFrame);
        Assert.Equal(1, row.Frames);
        Assert.Equal(128, row.LinesPerFrame);
        Assert.Equal(16, row.PagesPerFrame);
        // One bank: every 1 GiB frame of the socket, 1/16 of its pages.
        var bank = big.Analyze(big.Put(LineField.Bank, 3), big.FieldMask(LineField.Column) | big.FieldMask(LineField.Row), basis, inFrame);
        Assert.Equal(512, bank.Frames);
        Assert.Equal(262144 / 32, bank.PagesPerFrame);
    }

    [Fact]
    public void Default_calibration_puts_the_fraction_of_servers_with_a_UE_in_the_field_range()
    {
        var r = FleetMonteCarlo.Run(new FleetConfig { Servers = 100_000, Seed = 3, Policies = ["mainline"] }, new FleetRunOptions(2, FleetShard.Whole));
        double p = r.Tally.ServerMean(ServerMetric.ServersWithUe).Mean;
        Assert.InRange(p, 0.002, 0.02);
    }
}

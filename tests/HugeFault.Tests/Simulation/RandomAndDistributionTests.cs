using HugeFault.Simulation;

namespace HugeFault.Tests.Simulation;

public class RandomAndDistributionTests
{
    [Fact]
    public void The_first_draw_of_a_stream_computed_alone_is_the_streams_first_draw()
    {
        // the fleet rejects most servers on it (FleetServerSimulator.Simulate); any seed and stream, edge values included
        var rng = Xoshiro256StarStar.Create(2026);
        ulong[] edges = [0, 1, 2, ulong.MaxValue, ulong.MaxValue - 1, 0x9E3779B97F4A7C15UL, 0xD1B54A32D192ED03UL];
        foreach (ulong seed in edges)
            foreach (ulong stream in edges)
                Assert.Equal(Xoshiro256StarStar.ForStream(seed, stream).NextUInt64(), Xoshiro256StarStar.FirstOfStream(seed, stream));
        for (int i = 0; i < 10_000; i++)
        {
            ulong seed = rng.NextUInt64(), stream = rng.NextUInt64() >> (int)(rng.NextUInt64() % 64);
            Assert.Equal(Xoshiro256StarStar.ForStream(seed, stream).NextUInt64(), Xoshiro256StarStar.FirstOfStream(seed, stream));
        }
    }

    [Fact]
    public void The_same_seed_and_stream_give_the_same_sequence_and_other_streams_differ()
    {
        var a = Xoshiro256StarStar.ForStream(7, 3);
        var b = Xoshiro256StarStar.ForStream(7, 3);
        var c = Xoshiro256StarStar.ForStream(7, 4);
        var d = Xoshiro256StarStar.ForStream(8, 3);
        int sameAsOtherStream = 0, sameAsOtherSeed = 0;
        for (int i = 0; i < 1000; i++)
        {
            ulong x = a.NextUInt64();
            Assert.Equal(x, b.NextUInt64());
            if (x == c.NextUInt64()) sameAsOtherStream++;
            if (x == d.NextUInt64()) sameAsOtherSeed++;
        }
        Assert.Equal(0, sameAsOtherStream);
        Assert.Equal(0, sameAsOtherSeed);
    }

    [Fact]
    public void A_jump_moves_the_generator_to_a_different_subsequence_deterministically()
    {
        var a = Xoshiro256StarStar.Create(1);
        var b = Xoshiro256StarStar.Create(1);
        a.Jump();
        b.Jump();
        var c = Xoshiro256StarStar.Create(1);
        ulong fromJump = a.NextUInt64();
        Assert.Equal(fromJump, b.NextUInt64());
        Assert.NotEqual(fromJump, c.NextUInt64());
    }

    [Fact]
    public void Uniform_doubles_have_mean_one_half_and_bounded_integers_stay_in_range()
    {
        var rng = Xoshiro256StarStar.Create(11);
        var stats = new RunningStatistics();
        for (int i = 0; i < 200_000; i++)
        {
            double u = rng.NextDouble();
            Assert.InRange(u, 0.0, 0.9999999999999999);
            stats.Add(u);
            Assert.InRange(rng.NextBounded(18), 0u, 17u);
        }
        Assert.True(stats.ConfidenceInterval95.Contains(0.5) || Math.Abs(stats.Mean - 0.5) < 4 * stats.StandardError);
        Assert.Equal(1.0 / 12.0, stats.Variance, 0.002);
    }

    [Theory]
    [InlineData(0.7)]
    [InlineData(12.0)]
    [InlineData(250.0)]
    public void Poisson_draws_have_mean_and_variance_equal_to_the_rate(double mean)
    {
        var rng = Xoshiro256StarStar.Create(5);
        var stats = new RunningStatistics();
        for (int i = 0; i < 100_000; i++) stats.Add(Distributions.Poisson(ref rng, mean));
        Assert.True(Math.Abs(stats.Mean - mean) < 5 * Math.Sqrt(mean / 100_000.0), $"mean {stats.Mean} vs {mean}");
        Assert.Equal(1.0, stats.Variance / mean, 0.03);
    }

    [Fact]
    public void Exponential_gamma_and_lognormal_draws_have_their_textbook_means()
    {
        var rng = Xoshiro256StarStar.Create(9);
        RunningStatistics exp = new(), gammaSmall = new(), gammaLarge = new(), logn = new();
        const int n = 200_000;
        for (int i = 0; i < n; i++)
        {
            exp.Add(Distributions.Exponential(ref rng, 4.0));
            gammaSmall.Add(Distributions.Gamma(ref rng, 0.3, 2.0));
            gammaLarge.Add(Distributions.Gamma(ref rng, 5.0, 0.5));
            logn.Add(Distributions.LogNormal(ref rng, -0.5 * 0.5 * 0.5, 0.5));
        }
        Assert.Equal(0.25, exp.Mean, 0.005);
        Assert.Equal(0.6, gammaSmall.Mean, 0.02);
        Assert.Equal(0.3 * 4.0, gammaSmall.Variance, 0.1);
        Assert.Equal(2.5, gammaLarge.Mean, 0.02);
        Assert.Equal(1.0, logn.Mean, 0.01);
    }

    [Fact]
    public void Merged_running_statistics_equal_one_pass_over_all_samples()
    {
        var rng = Xoshiro256StarStar.Create(3);
        RunningStatistics all = new(), left = new(), right = new();
        for (int i = 0; i < 10_000; i++)
        {
            double x = Distributions.StandardNormal(ref rng) * 3 + 1;
            all.Add(x);
            if (i % 3 == 0) left.Add(x); else right.Add(x);
        }
        left.Merge(right);
        Assert.Equal(all.Count, left.Count);
        Assert.Equal(all.Mean, left.Mean, 1e-9);
        Assert.Equal(all.Variance, left.Variance, 1e-7);
    }

    [Fact]
    public void The_wilson_interval_of_zero_successes_is_not_degenerate_and_covers_the_estimate()
    {
        var none = new ProportionEstimate(0, 1000).Wilson95;
        Assert.Equal(0.0, none.Lower);
        Assert.True(none.Upper > 0.003 && none.Upper < 0.005);
        var some = new ProportionEstimate(70, 1000);
        Assert.True(some.Wilson95.Contains(0.07));
    }

    [Fact]
    public void An_alias_table_samples_each_index_in_proportion_to_its_weight()
    {
        double[] weights = [14.2, 18.6, 1.4, 0.3, 0.0, 5.6];
        var table = new AliasTable(weights);
        var rng = Xoshiro256StarStar.Create(21);
        var counts = new int[weights.Length];
        const int n = 400_000;
        for (int i = 0; i < n; i++) counts[table.Sample(ref rng)]++;
        double total = weights.Sum();
        for (int i = 0; i < weights.Length; i++)
        {
            double p = weights[i] / total;
            double sd = Math.Sqrt(n * p * (1 - p));
            Assert.True(Math.Abs(counts[i] - n * p) <= 5 * sd + 1e-9, $"index {i}: {counts[i]} vs {n * p}");
        }
        Assert.Equal(0, counts[4]);
    }
}

using HugeFault.Fleet.Dram;
using HugeFault.Simulation;

namespace HugeFault.Tests.Fleet;

public class RankMonteCarloTests
{
    private static DramRankModel JaguarChipkill(double fitScale = 1.0, double years = 7, EccScheme ecc = EccScheme.Chipkill) =>
        new(DramGeometry.Default, FitProfile.Jaguar, fitScale, years, 3, new EccOptions(ecc));

    private static RankMonteCarloResult Run(DramRankModel model, long trials, ulong seed = 7, int threads = 2,
        RankSamplerKind sampler = RankSamplerKind.Fast)
    {
        Assert.Empty(model.Validate());
        return RankMonteCarlo.Run(model, new RankMonteCarloOptions(trials, seed, threads, sampler));
    }

    /// <summary>|estimate − expected| within 4 standard errors, the standard error taken from the Wilson 95 % half-width.</summary>
    private static void AssertAgrees(double expected, ProportionEstimate estimate, string what)
    {
        var ci = estimate.Wilson95;
        double se = Math.Max((ci.Upper - ci.Lower) / (2 * 1.96), 1e-12);
        Assert.True(Math.Abs(estimate.Value - expected) <= 4 * se,
            $"{what}: estimate {estimate.Value} (95% CI [{ci.Lower}, {ci.Upper}]) vs expected {expected}");
    }

    [Fact]
    public void The_probability_of_at_least_one_fault_matches_the_closed_form_for_18_jaguar_chips_over_7_years()
    {
        var model = JaguarChipkill();
        Assert.Equal(61_320.0, model.Hours);
        Assert.Equal(0.070, model.ClosedFormFaultProbability, 3);
        var result = Run(model, 1_000_000);
        AssertAgrees(model.ClosedFormFaultProbability, result.Fault, "P(fault)");
        Assert.True(result.Fault.Wilson95.Contains(model.ClosedFormFaultProbability));
        Assert.Equal(model.ExpectedFaultsPerTrial, result.MeanFaultsPerTrial, 0.002);
    }

    [Fact]
    public void The_number_of_faults_per_trial_follows_the_poisson_distribution()
    {
        var model = JaguarChipkill(fitScale: 2.0 / 0.0729585); // Λ = 2 faults per trial
        var sampler = new RankFaultSampler(model);
        Assert.Equal(2.0, sampler.ExpectedFaults, 4);
        var rng = Xoshiro256StarStar.Create(17);
        var buffer = new DramFault[sampler.MaxFaultsPerTrial + 1];
        const int n = 200_000, bins = 9; // 0..7 and 8+
        var observed = new long[bins];
        for (int i = 0; i < n; i++) observed[Math.Min(sampler.SampleTrial(ref rng, buffer), bins - 1)]++;

        double chi2 = 0, pmf = Math.Exp(-2.0), tail = 1.0;
        for (int k = 0; k < bins; k++)
        {
            double p = k == bins - 1 ? tail : pmf;
            chi2 += Math.Pow(observed[k] - n * p, 2) / (n * p);
            tail -= pmf;
            pmf *= 2.0 / (k + 1);
        }
        Assert.True(chi2 < 27.9, $"chi-square {chi2} with 8 degrees of freedom exceeds the 0.1 % critical value");
    }

    [Fact]
    public void The_fast_sampler_matches_the_exponential_gap_reference_in_distribution()
    {
        // DDR4 rates ×30 on two ranks: ~12 faults per trial, plenty of multi-chip interactions.
        var model = new DramRankModel(new DramGeometry(18, 4, 2, 8, 16384, 2048), FitProfile.Ddr4Field, 30, 7, 24,
            new EccOptions(EccScheme.Chipkill));
        var fast = Run(model, 200_000, seed: 1);
        var reference = Run(model, 20_000, seed: 2, sampler: RankSamplerKind.Reference);
        AssertAgrees(fast.Uncorrectable.Value, reference.Uncorrectable, "P(UE), reference vs fast");
        AssertAgrees(fast.Undetected.Value, reference.Undetected, "P(undetected), reference vs fast");
        Assert.Equal(model.ExpectedFaultsPerTrial, reference.MeanFaultsPerTrial, model.ExpectedFaultsPerTrial * 0.02);
        Assert.Equal(model.ExpectedFaultsPerTrial, fast.MeanFaultsPerTrial, model.ExpectedFaultsPerTrial * 0.01);
    }

    [Fact]
    public void Secded_with_only_permanent_bit_faults_matches_the_closed_form_for_two_and_three_bits_in_a_word()
    {
        // 18 x4 chips, 1 bank × 4 rows × 4 columns = 16 words of B = 72 bit positions; Λ = 3 permanent bit faults per year.
        var geometry = new DramGeometry(18, 4, 1, 1, 4, 4);
        const double lambda = 3.0;
        double fit = lambda / (18 * 8760.0 * 1e-9);
        var profile = FitProfile.Create("bits", [], [fit])!;
        var model = new DramRankModel(geometry, profile, 1, 1, 24, new EccOptions(EccScheme.SecDed));
        // Poisson splitting: each of the W·B cells gets an independent Poisson(Λ/(W·B)) count; a word is a UE when
        // ≥2 of its B cells are hit, undetected when ≥3. Words are independent.
        const int W = 16, B = 72;
        double h = -double.ExpM1(-lambda / (W * B));
        double p0 = Math.Pow(1 - h, B), p1 = B * h * Math.Pow(1 - h, B - 1), p2 = B * (B - 1) / 2.0 * h * h * Math.Pow(1 - h, B - 2);
        double pUe = 1 - Math.Pow(p0 + p1, W);
        double pSdc = 1 - Math.Pow(p0 + p1 + p2, W);

        var result = Run(model, 300_000);
        AssertAgrees(pUe, result.Uncorrectable, "P(UE)");
        AssertAgrees(pSdc, result.Undetected, "P(undetected)");
    }

    [Fact]
    public void Under_secded_every_x4_word_fault_is_an_uncorrectable_error()
    {
        var profile = FitProfile.Create("words", [0, 500], [0, 500])!;
        var model = new DramRankModel(DramGeometry.Default, profile, 1, 7, 3, new EccOptions(EccScheme.SecDed));
        var result = Run(model, 100_000);
        Assert.True(result.Tally.FaultTrials > 1000);
        Assert.Equal(result.Tally.FaultTrials, result.Tally.UncorrectableTrials);
    }

    [Fact]
    public void Chipkill_never_reports_an_uncorrectable_error_on_a_single_chip_rank_without_weakening()
    {
        var model = new DramRankModel(new DramGeometry(1, 4, 1, 8, 16384, 2048), FitProfile.Jaguar, 3000, 7, 24,
            new EccOptions(EccScheme.Chipkill));
        var result = Run(model, 50_000);
        Assert.True(result.Tally.FaultTrials > 40_000);
        Assert.Equal(0, result.Tally.UncorrectableTrials);
        Assert.Equal(0, result.Tally.UndetectedTrials);
    }

    [Fact]
    public void The_weakened_ecc_probability_thins_multi_bit_faults_into_uncorrectable_errors()
    {
        // One chip, so only weakened faults can be UEs: P(UE) = 1 − exp(−p · Λ_multibit).
        var model = new DramRankModel(new DramGeometry(1, 4, 1, 8, 16384, 2048), FitProfile.Jaguar, 20, 7, 24,
            new EccOptions(EccScheme.Chipkill, WeakenedProbability: 0.5));
        double multiBitFit = FitProfile.Jaguar.Total - FitProfile.Jaguar.Transient(DramFaultMode.Bit) - FitProfile.Jaguar.Permanent(DramFaultMode.Bit);
        double lambda = multiBitFit * 20 * 1e-9 * model.Hours;
        var result = Run(model, 200_000);
        AssertAgrees(-double.ExpM1(-0.5 * lambda), result.Uncorrectable, "P(UE) with weakened ECC");
    }

    [Fact]
    public void Results_are_identical_for_one_and_two_threads()
    {
        var model = JaguarChipkill(fitScale: 20);
        var one = Run(model, 100_003, seed: 99, threads: 1);
        var two = Run(model, 100_003, seed: 99, threads: 2);
        var three = Run(model, 100_003, seed: 99, threads: 3);
        Assert.Equal(one.Tally, two.Tally);
        Assert.Equal(one.Tally, three.Tally);
        Assert.Equal(100_003, one.Tally.Trials);
        Assert.NotEqual(one.Tally, Run(model, 100_003, seed: 100, threads: 2).Tally);
    }

    [Fact]
    public void The_ue_rate_is_reported_in_fit_per_rank_and_per_device()
    {
        var model = JaguarChipkill(ecc: EccScheme.None);
        var result = Run(model, 200_000);
        // With no ECC every fault is a UE, so the UE FIT per device recovers the fault FIT (66.1) up to noise.
        Assert.Equal(66.1, result.FitUncorrectablePerDevice, 66.1 * 0.03);
        Assert.Equal(result.FitUncorrectablePerRank / 18, result.FitUncorrectablePerDevice, 1e-9);
        Assert.True(result.FitUncorrectablePerRank95.Contains(result.FitUncorrectablePerRank));
    }

    [Fact]
    public void Model_validation_reports_every_problem_instead_of_throwing()
    {
        var bad = new DramRankModel(new DramGeometry(0, 5, 3, 8, 1000, 2048), FitProfile.Jaguar, -1, 0, 0,
            new EccOptions(EccScheme.Chipkill, 2));
        var parameters = bad.Validate().Select(e => e.Parameter).ToHashSet();
        Assert.Superset(new HashSet<string> { "ChipsPerRank", "ChipWidth", "Ranks", "Rows", "FitScale", "Years", "ScrubHours", "WeakenedProbability" }, parameters);
    }
}

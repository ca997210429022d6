using BenchmarkDotNet.Attributes;
using HugeFault.Fleet.Dram;

namespace HugeFault.Bench;

/// <summary>
/// The rank Monte Carlo's hot loop: one block of <see cref="RankMonteCarloOptions.BlockSize"/> 7-year trials on one
/// thread, 18 x4 chips. Reported time is per trial (<c>OperationsPerInvoke</c>); the allocation column must read 0 B,
/// because the fault buffer is per worker and every trial reuses it.
/// Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- --filter '*DramBench*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public class DramBench
{
    private RankFaultSampler _sampler = null!;
    private RankEccEvaluator _evaluator = null!;
    private DramFault[] _buffer = null!;
    private long _block;

    /// <summary>ECC scheme.</summary>
    [Params(EccScheme.Chipkill, EccScheme.SecDed, EccScheme.None)]
    public EccScheme Ecc { get; set; }

    /// <summary>FIT profile name.</summary>
    [Params("jaguar", "ddr4")]
    public string Fit { get; set; } = "jaguar";

    [GlobalSetup]
    public void Setup()
    {
        var model = new DramRankModel(DramGeometry.Default, FitProfile.FromName(Fit)!, 1.0, 7, 3, new EccOptions(Ecc));
        _sampler = new RankFaultSampler(model);
        _evaluator = new RankEccEvaluator(model);
        _buffer = new DramFault[_sampler.MaxFaultsPerTrial + 1];
    }

    /// <summary>One block of trials; a new block index each call so the benchmark does not replay one stream.</summary>
    [Benchmark(OperationsPerInvoke = RankMonteCarloOptions.BlockSize)]
    public long RankTrialBlock()
    {
        var tally = RankMonteCarlo.RunBlock(_sampler, _evaluator, seed: 7, _block++, RankMonteCarloOptions.BlockSize, _buffer);
        return tally.UncorrectableTrials + tally.FaultTrials;
    }
}

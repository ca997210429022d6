using System.Diagnostics;
using HugeFault.Simulation;

namespace HugeFault.Fleet.Dram;

/// <summary>How trials are drawn.</summary>
public enum RankSamplerKind : byte
{
    /// <summary><see cref="RankFaultSampler"/>: Poisson count by threshold, placement by alias table.</summary>
    Fast = 0,
    /// <summary><see cref="ReferenceRankFaultSampler"/>: one exponential-gap process per device × mode × persistence.</summary>
    Reference = 1,
}

/// <summary>Run parameters that do not change the model.</summary>
/// <param name="Trials">Number of trials (each: <see cref="DramGeometry.Ranks"/> ranks over the mission).</param>
/// <param name="Seed">Root seed; block b draws from <see cref="Xoshiro256StarStar.ForStream"/>(Seed, b).</param>
/// <param name="Threads">Worker threads; results do not depend on it.</param>
/// <param name="Sampler">Fast (default) or the exponential-gap reference.</param>
public sealed record RankMonteCarloOptions(long Trials, ulong Seed, int Threads, RankSamplerKind Sampler = RankSamplerKind.Fast)
{
    /// <summary>Trials per block. Fixed, so block b always covers the same trials whatever the thread count.</summary>
    public const int BlockSize = 16384;

    /// <summary>Problems with the options (empty when valid).</summary>
    public IReadOnlyList<DramConfigError> Validate()
    {
        var errors = new List<DramConfigError>();
        if (Trials < 1) errors.Add(new(nameof(Trials), $"must be at least 1 (got {Trials})"));
        if (Threads < 1 || Threads > 1024) errors.Add(new(nameof(Threads), $"must be between 1 and 1024 (got {Threads})"));
        return errors;
    }
}

/// <summary>
/// Tallies of one block (or of a whole run). The counts are exact integers; the floating-point accumulator is merged
/// in block order, so it too is independent of the thread count.
/// </summary>
public struct RankTally
{
    /// <summary>Trials run.</summary>
    public long Trials;
    /// <summary>Trials with at least one fault.</summary>
    public long FaultTrials;
    /// <summary>Trials with an uncorrectable pattern.</summary>
    public long UncorrectableTrials;
    /// <summary>Trials with an undetectable pattern.</summary>
    public long UndetectedTrials;
    /// <summary>Faults over all trials.</summary>
    public long Faults;
    /// <summary>Hours from trial start to the first uncorrectable pattern, over the trials that had one.</summary>
    public RunningStatistics FirstUncorrectableHours;

    /// <summary>Adds <paramref name="other"/> into this tally.</summary>
    public void Add(in RankTally other)
    {
        Trials += other.Trials;
        FaultTrials += other.FaultTrials;
        UncorrectableTrials += other.UncorrectableTrials;
        UndetectedTrials += other.UndetectedTrials;
        Faults += other.Faults;
        FirstUncorrectableHours.Merge(other.FirstUncorrectableHours);
    }
}

/// <summary>
/// The rank-level Monte Carlo: runs independent trials of a <see cref="DramRankModel"/> on several threads and
/// reduces per-block tallies in block order. Output is a pure function of (model, trials, seed); the thread count
/// only changes <see cref="RankMonteCarloResult.Elapsed"/>.
/// </summary>
public static class RankMonteCarlo
{
    /// <summary>Runs the simulation. Model and options must be valid (see their <c>Validate</c> methods).</summary>
    public static RankMonteCarloResult Run(DramRankModel model, RankMonteCarloOptions options)
    {
        var sampler = new RankFaultSampler(model);
        var reference = options.Sampler == RankSamplerKind.Reference ? new ReferenceRankFaultSampler(model) : null;
        var evaluator = new RankEccEvaluator(model);
        long blocks = (options.Trials + RankMonteCarloOptions.BlockSize - 1) / RankMonteCarloOptions.BlockSize;
        var tallies = new RankTally[blocks];
        // The reference sampler has no hard cap on the count; give it generous room and fail loudly if exceeded.
        int capacity = reference is null ? sampler.MaxFaultsPerTrial + 1 : 4 * sampler.MaxFaultsPerTrial + 64;

        var clock = Stopwatch.StartNew();
        long next = -1;
        var workers = new Thread[Math.Min(options.Threads, (int)Math.Min(blocks, int.MaxValue))];
        Exception? failure = null;
        for (int w = 0; w < workers.Length; w++)
        {
            workers[w] = new Thread(() =>
            {
                try
                {
                    var buffer = new DramFault[capacity]; // one per worker, reused by every trial
                    long b;
                    while ((b = Interlocked.Increment(ref next)) < blocks)
                    {
                        int count = (int)Math.Min(RankMonteCarloOptions.BlockSize, options.Trials - b * RankMonteCarloOptions.BlockSize);
                        tallies[b] = reference is null
                            ? RunBlock(sampler, evaluator, options.Seed, b, count, buffer)
                            : RunReferenceBlock(reference, evaluator, options.Seed, b, count, buffer);
                    }
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, e, null);
                }
            })
            { IsBackground = true, Name = $"dram-mc-{w}" };
            workers[w].Start();
        }
        foreach (var t in workers) t.Join();
        clock.Stop();
        if (failure is not null) throw new InvalidOperationException("Monte Carlo worker failed", failure);

        var total = new RankTally();
        foreach (ref readonly var t in tallies.AsSpan()) total.Add(t);
        return new RankMonteCarloResult(model, options, total, clock.Elapsed);
    }

    /// <summary>
    /// One block of trials with the fast sampler: the hot loop. Allocation-free; the zero-fault test is inlined so a
    /// fault-free trial costs one xoshiro draw and one compare.
    /// </summary>
    public static RankTally RunBlock(RankFaultSampler sampler, RankEccEvaluator evaluator, ulong seed, long block, int trials, DramFault[] buffer)
    {
        var rng = Xoshiro256StarStar.ForStream(seed, (ulong)block);
        ulong zero = sampler.ZeroFaultThreshold;
        var tally = new RankTally { Trials = trials };
        for (int i = 0; i < trials; i++)
        {
            ulong u = rng.NextUInt64();
            if (u < zero) continue;
            int k = sampler.CountFromUniform(u);
            var faults = buffer.AsSpan(0, k);
            sampler.PlaceFaults(ref rng, faults);
            Tally(ref tally, evaluator.Judge(faults), k);
        }
        return tally;
    }

    private static RankTally RunReferenceBlock(ReferenceRankFaultSampler sampler, RankEccEvaluator evaluator, ulong seed, long block, int trials, DramFault[] buffer)
    {
        var rng = Xoshiro256StarStar.ForStream(seed, (ulong)block);
        var tally = new RankTally { Trials = trials };
        for (int i = 0; i < trials; i++)
        {
            int k = sampler.SampleTrial(ref rng, buffer);
            if (k < 0) throw new InvalidOperationException("reference sampler buffer overflow");
            if (k == 0) continue;
            Tally(ref tally, evaluator.Judge(buffer.AsSpan(0, k)), k);
        }
        return tally;
    }

    private static void Tally(ref RankTally tally, in EccVerdict verdict, int faults)
    {
        tally.FaultTrials++;
        tally.Faults += faults;
        if (verdict.FirstUncorrectableHours < double.PositiveInfinity)
        {
            tally.UncorrectableTrials++;
            tally.FirstUncorrectableHours.Add(verdict.FirstUncorrectableHours);
        }
        if (verdict.FirstUndetectedHours < double.PositiveInfinity) tally.UndetectedTrials++;
    }
}

/// <summary>Outcome of a run: exact tallies plus derived probabilities, CIs and rates.</summary>
/// <param name="Model">The simulated model.</param>
/// <param name="Options">Run parameters.</param>
/// <param name="Tally">Totals over all trials.</param>
/// <param name="Elapsed">Wall-clock time of the trials (the only non-deterministic field).</param>
public sealed record RankMonteCarloResult(DramRankModel Model, RankMonteCarloOptions Options, RankTally Tally, TimeSpan Elapsed)
{
    /// <summary>P(at least one fault in a trial).</summary>
    public ProportionEstimate Fault => new(Tally.FaultTrials, Tally.Trials);

    /// <summary>P(an uncorrectable pattern existed in a trial).</summary>
    public ProportionEstimate Uncorrectable => new(Tally.UncorrectableTrials, Tally.Trials);

    /// <summary>P(an undetectable pattern existed in a trial).</summary>
    public ProportionEstimate Undetected => new(Tally.UndetectedTrials, Tally.Trials);

    /// <summary>Mean faults per trial (compare with <see cref="DramRankModel.ExpectedFaultsPerTrial"/>).</summary>
    public double MeanFaultsPerTrial => Tally.Trials == 0 ? 0 : (double)Tally.Faults / Tally.Trials;

    /// <summary>Trials per second of wall-clock time.</summary>
    public double TrialsPerSecond => Elapsed.TotalSeconds > 0 ? Tally.Trials / Elapsed.TotalSeconds : double.PositiveInfinity;

    /// <summary>
    /// UE rate in FIT per rank: first-UE events per 10^9 rank-hours, as the constant hazard that gives the observed
    /// P(UE) over the mission, −ln(1 − P(UE)) / (ranks × hours) × 10^9.
    /// </summary>
    public double FitUncorrectablePerRank => ToFitPerRank(Uncorrectable.Value);

    /// <summary>95 % interval of <see cref="FitUncorrectablePerRank"/> (the Wilson bounds of P(UE) mapped through the same transform).</summary>
    public ConfidenceInterval FitUncorrectablePerRank95
    {
        get
        {
            var ci = Uncorrectable.Wilson95;
            return new(ToFitPerRank(ci.Lower), ToFitPerRank(ci.Upper));
        }
    }

    /// <summary>The same UE rate per DRAM device (FIT per rank / chips per rank), comparable with the fault FIT tables.</summary>
    public double FitUncorrectablePerDevice => FitUncorrectablePerRank / Model.Geometry.ChipsPerRank;

    private double ToFitPerRank(double p) => p >= 1.0 ? double.PositiveInfinity
        : -Math.Log(1.0 - p) / (Model.Geometry.Ranks * Model.Hours) * 1e9;
}

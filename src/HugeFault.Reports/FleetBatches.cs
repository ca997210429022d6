using HugeFault.Fleet;
using HugeFault.Simulation;

namespace HugeFault.Reports;

/// <summary>
/// Per-bin 95 % bands of the mean stranded-capacity series, from batch means: the fleet is run as B disjoint
/// batches of servers (sub-shards), whose merged tally is exactly the whole run's; the spread of the B batch
/// means gives a Student-t interval per month, on the log scale so it stays positive.
/// </summary>
public sealed record FleetBands(int Batches, double[,] Mean, double[,] Lower, double[,] Upper);

public static class FleetBatches
{
    public const int DefaultBatches = 8;

    /// <summary>Runs shard <paramref name="shard"/> of the fleet as <paramref name="batches"/> sub-shards on <paramref name="threads"/> threads.</summary>
    public static (FleetResult Result, FleetBands Bands) Run(FleetConfig config, int threads, FleetShard shard, int batches = DefaultBatches, bool collectRows = false, Action<long>? progress = null)
    {
        var parts = new FleetResult[batches];
        var done = new long[batches];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Parallel.For(0, batches, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, j =>
        {
            var sub = new FleetShard(shard.Index * batches + j, shard.Count * batches);
            parts[j] = FleetMonteCarlo.Run(config, new FleetRunOptions(1, sub, collectRows, d =>
            {
                Interlocked.Exchange(ref done[j], d);
                progress?.Invoke(done.Sum());
            }));
        });
        clock.Stop();
        var total = new FleetTally(config.Policies, parts[0].Tally.Bins);
        foreach (var p in parts) total.Merge(p.Tally);
        var rows = parts.SelectMany(p => p.Rows).ToList();
        var (first, end) = shard.Range(config.Servers);
        var merged = new FleetResult(config, parts[0].Model, shard, first, end, total, rows, clock.Elapsed);
        return (merged, Bands(parts, total));
    }

    private static FleetBands Bands(FleetResult[] parts, FleetTally total)
    {
        int np = total.Policies.Length, bins = total.Bins, b = parts.Length;
        var mean = new double[np, bins];
        var lo = new double[np, bins];
        var hi = new double[np, bins];
        double t = b > 1 ? MathNet.Numerics.Distributions.StudentT.InvCDF(0, 1, b - 1, 0.975) : 0;
        for (int p = 0; p < np; p++)
            for (int k = 0; k < bins; k++)
            {
                mean[p, k] = total.Servers == 0 ? 0 : (double)total.Series[p, k] / total.Servers;
                var ms = parts.Where(x => x.Tally.Servers > 0).Select(x => (double)x.Tally.Series[p, k] / x.Tally.Servers).ToArray();
                double m = ms.Length == 0 ? 0 : ms.Average();
                double sd = ms.Length > 1 ? Math.Sqrt(ms.Sum(x => (x - m) * (x - m)) / (ms.Length - 1)) : 0;
                var ci = Intervals.Positive(mean[p, k], sd / Math.Sqrt(Math.Max(1, ms.Length)), t);
                lo[p, k] = ci.Lower;
                hi[p, k] = ci.Upper;
            }
        return new FleetBands(b, mean, lo, hi);
    }
}

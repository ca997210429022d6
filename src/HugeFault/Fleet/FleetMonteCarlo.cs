using System.Diagnostics;

namespace HugeFault.Fleet;

/// <summary>Which servers this process simulates: shard <see cref="Index"/> of <see cref="Count"/>.</summary>
public readonly record struct FleetShard(int Index, int Count)
{
    public static FleetShard Whole => new(0, 1);

    /// <summary>Server range [first, end) of this shard among <paramref name="servers"/>: contiguous, balanced, covering all.</summary>
    public (long First, long End) Range(long servers) =>
        ((long)((Int128)servers * Index / Count), (long)((Int128)servers * (Index + 1) / Count));
}

/// <summary>One per-server output row (only servers with an uncorrectable pattern get one).</summary>
public sealed record FleetServerRow(long Server, long Faults, long UePatterns, long DimmReplacements, long[] StrandedPageHours,
    long[] StrandedPagesEnd, long[] UeEvents, long[] VmsKilled, long[] GuestLostBytes);

/// <summary>Run options that do not change the result.</summary>
/// <param name="Threads">Worker threads (results do not depend on it).</param>
/// <param name="Shard">Which slice of the servers to run.</param>
/// <param name="CollectRows">Keep per-server rows (for Parquet).</param>
/// <param name="Progress">Called with servers done so far (from worker threads).</param>
public sealed record FleetRunOptions(int Threads, FleetShard Shard, bool CollectRows = false, Action<long>? Progress = null);

/// <summary>A run's tallies, rows and timing (<see cref="Elapsed"/> includes asking the policies' kernel models, <see cref="EffectTableTime"/>).</summary>
public sealed record FleetResult(FleetConfig Config, FleetModel Model, FleetShard Shard, long FirstServer, long EndServer,
    FleetTally Tally, IReadOnlyList<FleetServerRow> Rows, TimeSpan Elapsed)
{
    /// <summary>Wall time spent before the servers ran, asking each policy's kernel model about the common event classes (none when a table was already filled in this process).</summary>
    public TimeSpan EffectTableTime { get; init; }
}

/// <summary>
/// The fleet Monte Carlo: servers in fixed blocks, each server from its own random streams, worker tallies added with
/// exact integer arithmetic. Output is a pure function of (config, shard); threads change only the elapsed time.
/// </summary>
public static class FleetMonteCarlo
{
    /// <summary>Servers per block (a unit of work; does not affect results).</summary>
    public const int BlockSize = 2048;

    public static FleetResult Run(FleetConfig config, FleetRunOptions options)
    {
        var clock = Stopwatch.StartNew();
        var model = new FleetModel(config);
        // Each policy's kernel model is asked about the common event classes up front, the tables in parallel (rare
        // classes are asked when a worker meets them).
        Parallel.ForEach(model.Tables.Distinct(), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.Threads) }, t => t.Prepare());
        var tableTime = clock.Elapsed;
        var (first, end) = options.Shard.Range(config.Servers);
        long count = end - first;
        long blocks = (count + BlockSize - 1) / BlockSize;
        // One tally per worker: every accumulator is an exact integer sum, so which worker adds which server does not
        // change the totals, and memory stays O(threads) however many servers a shard has.
        var workers = new Thread[(int)Math.Max(1, Math.Min(options.Threads, Math.Max(1, blocks)))];
        var tallies = new FleetTally[workers.Length];
        var rows = options.CollectRows ? new List<FleetServerRow>?[blocks] : null;
        long next = -1, done = 0;
        Exception? failure = null;
        for (int w = 0; w < workers.Length; w++)
        {
            int worker = w;
            workers[w] = new Thread(() =>
            {
                try
                {
                    var sim = new FleetServerSimulator(model);
                    var tally = tallies[worker] = new FleetTally(config.Policies, model.Bins);
                    long b;
                    while ((b = Interlocked.Increment(ref next)) < blocks)
                    {
                        long lo = first + b * BlockSize, hi = Math.Min(end, lo + BlockSize);
                        List<FleetServerRow>? blockRows = null;
                        for (long i = lo; i < hi; i++)
                        {
                            if (!sim.Simulate(i)) { tally.AddEmpty(); continue; }
                            var o = sim.Outcome;
                            tally.Add(o);
                            if (rows is not null && o.Server[(int)ServerMetric.UePatterns] > 0)
                                (blockRows ??= new()).Add(Row(o));
                        }
                        if (rows is not null) rows[b] = blockRows;
                        long d = Interlocked.Add(ref done, hi - lo);
                        options.Progress?.Invoke(d);
                    }
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, e, null);
                }
            })
            { IsBackground = true, Name = $"fleet-mc-{w}" };
            workers[w].Start();
        }
        foreach (var t in workers) t.Join();
        clock.Stop();
        if (failure is not null) throw new InvalidOperationException("fleet worker failed", failure);
        var total = new FleetTally(config.Policies, model.Bins);
        foreach (var t in tallies) if (t is not null) total.Merge(t);
        var allRows = rows is null ? [] : rows.Where(r => r is not null).SelectMany(r => r!).ToList();
        return new FleetResult(config, model, options.Shard, first, end, total, allRows, clock.Elapsed) { EffectTableTime = tableTime };
    }

    private static FleetServerRow Row(ServerOutcome o)
    {
        int p = o.Policy.GetLength(0);
        long[] Col(PolicyMetric m)
        {
            var a = new long[p];
            for (int i = 0; i < p; i++) a[i] = o.Policy[i, (int)m];
            return a;
        }
        return new FleetServerRow(o.Index, o.Server[(int)ServerMetric.Faults], o.Server[(int)ServerMetric.UePatterns],
            o.Server[(int)ServerMetric.DimmReplacements], Col(PolicyMetric.StrandedPageHours), Col(PolicyMetric.StrandedPagesEnd),
            Col(PolicyMetric.UeEvents), Col(PolicyMetric.VmsKilled), Col(PolicyMetric.GuestLostBytes));
    }
}

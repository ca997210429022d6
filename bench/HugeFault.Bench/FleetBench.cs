using BenchmarkDotNet.Attributes;
using HugeFault.Fleet;
using HugeFault.Policies;

namespace HugeFault.Bench;

/// <summary>
/// The fleet Monte Carlo's hot loop on one thread, default configuration (2-socket 1 TiB DDR4 Chipkill server, every
/// registered policy). <see cref="ServerBlock"/> is the mix a real run sees (most servers fault-free), reported per
/// server; <see cref="FaultFreeServers"/> a server-year that sees nothing; <see cref="ServersWithUes"/> replays only
/// servers with UE events (patterns, sites, the policies' runs), reported per such server. The allocation column must
/// read 0 B: buffers belong to the per-worker simulator and are reused by every server, fault and event, and the
/// policies' effect tables are filled before the measurement (a rare event class met later is asked of the kernel
/// model once, the only allocation, and shows as a few bytes per operation).
/// Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- --filter '*FleetBench*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public class FleetBench
{
    private const int Block = 2048;
    private FleetServerSimulator _sim = null!;
    private FleetTally _tally = null!;
    private long[] _heavy = [];
    private long[] _empty = [];
    private long _next;
    private int _heavyNext;

    [GlobalSetup]
    public void Setup()
    {
        var config = new FleetConfig { Servers = long.MaxValue / 8, Seed = 3 };
        var model = new FleetModel(config);
        foreach (var t in model.Tables) t.Prepare();
        _sim = new FleetServerSimulator(model);
        _tally = new FleetTally(config.Policies, model.Bins);
        var heavy = new List<long>();
        for (long i = 0; heavy.Count < 256; i++)
            if (_sim.Simulate(i) && _sim.Outcome.Server[(int)ServerMetric.Sites] > 0) heavy.Add(i);
        _heavy = heavy.ToArray();
        var empty = new List<long>();
        for (long i = 0; empty.Count < 1024; i++)
            if (!_sim.Simulate(i)) empty.Add(i);
        _empty = empty.ToArray();
        // Warm every buffer to its high-water mark, and the tables with the classes these servers meet.
        foreach (long i in _heavy) _sim.Simulate(i);
        for (long i = 0; i < 200_000; i++) _sim.Simulate(i);
        _next = 200_000;
    }

    /// <summary>A block of consecutive servers (new ones each call), each simulated under every policy and tallied.</summary>
    [Benchmark(OperationsPerInvoke = Block)]
    public long ServerBlock()
    {
        long start = _next;
        _next += Block;
        for (long i = start; i < start + Block; i++)
        {
            if (_sim.Simulate(i)) _tally.Add(_sim.Outcome);
            else _tally.AddEmpty();
        }
        return _tally.Servers;
    }

    /// <summary>Fault-free servers only: the cost of a server-year that sees nothing (stream setup, one draw, one compare).</summary>
    [Benchmark(OperationsPerInvoke = 1024)]
    public long FaultFreeServers()
    {
        long n = 0;
        foreach (long i in _empty) n += _sim.Simulate(i) ? 1 : 0;
        return n;
    }

    /// <summary>One server with UE events (cycling through 256 pre-selected ones), all policies.</summary>
    [Benchmark]
    public long ServersWithUes()
    {
        long i = _heavy[_heavyNext++ & 255];
        _sim.Simulate(i);
        _tally.Add(_sim.Outcome);
        return _tally.ServersTouched;
    }
}

/// <summary>
/// The targets: 1,000,000 servers × 1 year, every registered policy, seed 3, on 1 and 2 threads
/// (<see cref="FleetMonteCarlo.Run"/>; the tables of the common event classes are filled already, as in any run after
/// the first in a process: <see cref="FleetTablesBench"/> measures building them). Run:
/// <c>dotnet run -c Release --project bench/HugeFault.Bench -- --filter '*FleetRunBench*'</c>.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class FleetRunBench
{
    private FleetConfig _config = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _config = new FleetConfig { Servers = 1_000_000, Seed = 3 };
        FleetMonteCarlo.Run(_config with { Servers = 100_000 }, new FleetRunOptions(Threads, FleetShard.Whole));
    }

    [Benchmark]
    public long Servers1M() => FleetMonteCarlo.Run(_config, new FleetRunOptions(Threads, FleetShard.Whole)).Tally.ServersTouched;

}

/// <summary>
/// What asking every registered policy's kernel model about the common event classes costs (once per process, before a
/// run's servers): <see cref="EffectTable.Prepare"/> on fresh tables, one thread. The first iteration also pays the
/// kernel model's JIT.
/// Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- --filter '*FleetTablesBench*'</c>.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class FleetTablesBench
{
    [Benchmark]
    public int EffectTables()
    {
        int probes = 0;
        foreach (var p in RecoveryPolicies.Names)
        {
            var t = EffectTable.Fresh(p, new Dictionary<string, string>());
            t.Prepare();
            probes += t.Probes;
        }
        return probes;
    }
}

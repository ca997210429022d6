using BenchmarkDotNet.Attributes;
using HugeFault.Fleet;

namespace HugeFault.Bench;

/// <summary>
/// The fleet Monte Carlo's hot loop on one thread, default configuration (2-socket 1 TiB DDR4 Chipkill server, all eight
/// policies). <see cref="ServerBlock"/> is the mix a real run sees (most servers fault-free), reported per server;
/// <see cref="ServersWithUes"/> replays only servers that have UE events (the expensive path: patterns, sites, eight
/// policy runs), reported per such server. The allocation column must read 0 B (or a few bytes from a buffer growing to a
/// new maximum): buffers belong to the per-worker simulator and are reused by every server, fault and event.
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
        // Warm every buffer to its high-water mark.
        foreach (long i in _heavy) _sim.Simulate(i);
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

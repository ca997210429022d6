using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>
/// Simulates one server at a time: faults → uncorrectable patterns (<see cref="ServerFaults"/>) → DIMM swaps
/// (<see cref="DimmService"/>) → (pattern, 1 GiB frame) sites (<see cref="UeSites"/>) → UE events handled by every
/// policy on the same history (<see cref="PolicyRun"/>, common random numbers). One instance per worker thread; every
/// buffer is reused, so after warm-up a server allocates nothing.
/// <para>Random streams of server i (all <see cref="Xoshiro256StarStar.ForStream"/>(seed, ·), so any sharding or thread
/// count gives the same server): 4i faults, 4i+1 site draws, 4i+2 VM arrivals, 4i+3 (+replacement index in the seed)
/// the stationary VM fill. Policies re-create the workload streams, so they all see the same VMs arrive.</para>
/// </summary>
public sealed class FleetServerSimulator
{
    private readonly FleetModel _m;
    private readonly ServerOutcome _out;
    private readonly ServerFaults _faults;
    private readonly DimmService _dimms;
    private readonly UeSites _sites;
    private readonly PolicyRun _run;
    private readonly bool[] _todo;

    public FleetServerSimulator(FleetModel model)
    {
        _m = model;
        _out = new ServerOutcome(model.Policies.Length, model.Bins);
        _faults = new ServerFaults(model);
        _dimms = new DimmService(model);
        _sites = new UeSites(model);
        _run = new PolicyRun(model, _out, _sites, _dimms);
        _todo = new bool[model.Policies.Length];
    }

    /// <summary>Optional observer of every UE event the first policy handles (tests sample real events with it); null on the hot path.</summary>
    public Action<FleetUeEvent>? Observer { get => _run.Observer; set => _run.Observer = value; }

    /// <summary>The reused outcome of the last <see cref="Simulate"/> call.</summary>
    public ServerOutcome Outcome => _out;

    /// <summary>Simulates server <paramref name="index"/>; returns false (and leaves <see cref="Outcome"/> all zero) for a fault-free server.</summary>
    public bool Simulate(long index)
    {
        var o = _out;
        if (o.Touched) o.Clear();
        o.Index = index;
        // most servers see nothing: decided on the stream's first draw alone, before its state is built
        if (Xoshiro256StarStar.FirstOfStream(_m.Config.Seed, (ulong)index * 4) < _m.ZeroThreshold) return false;
        var rng = Xoshiro256StarStar.ForStream(_m.Config.Seed, (ulong)index * 4);
        rng.NextUInt64();
        o.Touched = true;

        int total = _faults.Draw(ref rng, out int deposited);
        o.Server[(int)ServerMetric.Faults] = total;
        int patterns = _faults.FindAll(deposited, ref rng);
        _dimms.Apply(ref rng, _faults, ref patterns, o);
        _sites.Build(index, _faults, patterns, _dimms, o);
        o.Server[(int)ServerMetric.Sites] = _sites.Count;
        o.Server[(int)ServerMetric.DimmReplacements] = _dimms.Count;
        if (_sites.Count == 0) return true;
        o.HasPolicyData = true;
        // Every policy on the same history. A run's leader takes along the policies not run yet; those whose effects agree
        // on every event of this server follow it to the end and need no run of their own.
        var todo = _todo.AsSpan();
        todo.Fill(true);
        for (int p = 0; p < todo.Length; p++)
        {
            if (!todo[p]) continue;
            _run.Run(index, p, todo);
            todo[p] = false;
            foreach (int q in _run.Followers) todo[q] = false;
        }
        return true;
    }
}

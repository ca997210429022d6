using System.Diagnostics;
using HugeFault.Fleet;

namespace HugeFault.Reports;

/// <summary>An assumed fleet parameter, the plausible range of its value and where that range comes from.</summary>
/// <param name="Key">The fleet YAML key path (docs/fleet.md), checked against the loader by a test.</param>
public sealed record SensitivityParameter(string Key, double Low, double High, string Source, Func<FleetConfig, double> Read, Func<FleetConfig, double, FleetConfig> Apply);

/// <summary>One re-run of the fleet with one parameter at one end of its range (or the baseline when <see cref="Parameter"/> is null).</summary>
public sealed record SensitivityRun(SensitivityParameter? Parameter, bool High, double Value, FleetReport Report);

/// <summary>All re-runs, at <see cref="Servers"/> servers each, and how long they took.</summary>
public sealed record SensitivityResult(long Servers, HugeFault.Fleet.FleetConfig Config, SensitivityRun Baseline, IReadOnlyList<SensitivityRun> Runs, TimeSpan Elapsed);

/// <summary>
/// The sensitivity of the fleet's verdict to the parameters it assumes: the one table of those parameters (the only
/// place that names them) and the re-runs, in parallel, on the same seed (common random numbers across the runs).
/// </summary>
public static class Sensitivity
{
    /// <summary>Servers per re-run: Δ intervals for the headline claims stay well clear of zero at this size.</summary>
    public const long DefaultServers = 20_000;

    public static readonly IReadOnlyList<SensitivityParameter> Parameters =
    [
        new("workload.touches_per_line_hour", 0.0004, 0.04,
            "demand reads of one guest line per hour (× the VM's hotness): it turns a latent pattern into a consumed error and lost memory into fatal touches; a tenth of the default for mostly idle guests to ten times it for hot in-memory stores",
            c => c.Workload.TouchesPerLineHour, (c, v) => c with { Workload = c.Workload with { TouchesPerLineHour = v } }),
        new("guest.guest_kernel_fraction", 0.02, 0.15,
            "share of a guest's memory holding guest-kernel data (a 4 KiB loss there panics the guest): a few per cent for a large application VM, up to about 15 % for a small one",
            c => c.Guest.GuestKernelFraction, (c, v) => c with { Guest = c.Guest with { GuestKernelFraction = v } }),
        new("guest.enlightened_fraction", 0.0, 0.5,
            "guests that accept a repaired (zeroed) line: none today, half the fleet as an optimistic future",
            c => c.Guest.EnlightenedFraction, (c, v) => c with { Guest = c.Guest with { EnlightenedFraction = v } }),
        new("server.weakened_ecc", 0.03, 0.10,
            "the calibration lever of docs/fleet.md: 0.03 and 0.10 give about 0.7 % and 1.8 % of servers with a UE per year, near the ends of the 0.2–2 % seen in field studies",
            c => c.Server.WeakenedEcc, (c, v) => c with { Server = c.Server with { WeakenedEcc = v } }),
        new("workload.pool_occupancy", 0.60, 0.95,
            "how full the 1 GiB pool runs: loosely packed hosts to tightly bin-packed ones (it sets how often copy-around finds a free page)",
            c => c.Workload.PoolOccupancy, (c, v) => c with { Workload = c.Workload with { PoolOccupancy = v } }),
    ];

    /// <summary>Runs the baseline and both ends of every parameter at <paramref name="servers"/> servers, <paramref name="threads"/> runs at a time.</summary>
    public static SensitivityResult Run(FleetConfig baseConfig, long servers, int threads, Func<FleetResult, FleetReport> report)
    {
        var cfg = baseConfig with { Servers = servers };
        var jobs = new List<(SensitivityParameter? P, bool High, double Value)> { (null, false, 0) };
        foreach (var p in Parameters) { jobs.Add((p, false, p.Low)); jobs.Add((p, true, p.High)); }
        var results = new SensitivityRun[jobs.Count];
        var clock = Stopwatch.StartNew();
        Parallel.For(0, jobs.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, i =>
        {
            var (p, high, v) = jobs[i];
            var c = p is null ? cfg : p.Apply(cfg, v);
            var r = FleetMonteCarlo.Run(c, new FleetRunOptions(1, FleetShard.Whole));
            results[i] = new SensitivityRun(p, high, p is null ? 0 : v, report(r));
        });
        clock.Stop();
        return new SensitivityResult(servers, cfg, results[0], results.Skip(1).ToList(), clock.Elapsed);
    }
}

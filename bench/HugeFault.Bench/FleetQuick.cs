using System.Diagnostics;
using HugeFault.Fleet;

namespace HugeFault.Bench;

/// <summary>
/// A Stopwatch check of <see cref="FleetRunBench"/> while working on a shared machine: runs 1,000,000 servers × 1 year
/// (seed 3, every policy) on 1 and 2 threads, alternating, and prints per run the wall time, the process's CPU time and
/// the two-thread efficiency (CPU / (threads × wall)), which a busy machine lowers where the wall time alone misleads.
/// The first run of the process also fills the effect tables (printed separately).
/// Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- fleet [runs] [servers]</c>.
/// </summary>
public static class FleetQuick
{
    public static void Run(TextWriter o, int runs, long servers)
    {
        var config = new FleetConfig { Servers = servers, Seed = 3 };
        if (Environment.GetEnvironmentVariable("FLEET_POLICIES") is { } pol) config = config with { Policies = pol.Split(',') };
        var self = Process.GetCurrentProcess();
        for (int r = 0; r < runs; r++)
            foreach (int threads in (Environment.GetEnvironmentVariable("FLEET_THREADS") ?? "1,2").Split(',').Select(int.Parse))
            {
                self.Refresh();
                var cpu0 = self.TotalProcessorTime;
                var res = FleetMonteCarlo.Run(config, new FleetRunOptions(threads, FleetShard.Whole));
                self.Refresh();
                double cpu = (self.TotalProcessorTime - cpu0).TotalSeconds;
                double wall = res.Elapsed.TotalSeconds;
                o.WriteLine($"run {r} threads {threads}: wall {wall:0.000} s  cpu {cpu:0.000} s  cpu/(threads*wall) {cpu / (threads * wall):0.00}  tables {res.EffectTableTime.TotalSeconds:0.000} s  load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
            }
    }
}

/// <summary>
/// Where a 1,000,000-server run's work lies (a probe for profiling): servers by sites (none touched, no sites, fewer than
/// 64, 64 or more) with the time each group takes (a second pass over the same servers, warm), UE events and host panics
/// per policy. <c>FLEET_EFFECTS=1</c> prints the common event classes' effects per policy instead.
/// Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- stats</c>.
/// </summary>
public static class FleetStats
{
    public static void Run(TextWriter o, long servers)
    {
        var config = new FleetConfig { Servers = servers, Seed = 3 };
        var model = new FleetModel(config);
        foreach (var t in model.Tables.Distinct()) t.Prepare();
        if (Environment.GetEnvironmentVariable("FLEET_EFFECTS") is not null)
        {
            foreach (int id in new[] { EventClass.FreeId(HugeFault.Mm.PoisonKind.Permanent, true), EventClass.MappedId(HugeFault.Mm.PoisonKind.Permanent, false, true, false), EventClass.MappedId(HugeFault.Mm.PoisonKind.Permanent, true, true, false) })
            {
                o.WriteLine(EventClass.FromId(id));
                for (int p = 0; p < model.Policies.Length; p++) { var e = model.Tables[p].First(id); o.WriteLine($"  {model.Policies[p],-18} traj {e.Trajectory} tally {e.Tally} {e.Backing} rep {e.Repaired} rel {e.Release} lost {e.GuestLost} unk {e.UnknownLost} str {e.Stranded} pt {e.PageTables} mce {e.Mces} died {e.GuestDied} extra {e.ExtraFirst}/{e.ExtraFurther} panic {e.PanicOne}/{e.PanicMore}"); }
            }
            return;
        }
        var sim = new FleetServerSimulator(model);
        long touched = 0, withSites = 0, sites = 0, maxSites = 0;
        int np = model.Policies.Length;
        var ue = new long[np]; var panics = new long[np];
        var hist = new long[20];
        long bigSites = 0; long bigServers = 0;
        var tb = new long[4];
        for (int pass = 0; pass < 2; pass++)
        for (long i = 0; i < servers; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            bool any = sim.Simulate(i);
            long dt = Stopwatch.GetTimestamp() - t0;
            long ss = any ? sim.Outcome.Server[(int)ServerMetric.Sites] : -1;
            if (pass == 1) tb[ss < 0 ? 0 : ss == 0 ? 1 : ss < 64 ? 2 : 3] += dt;
            if (pass == 0 || !any) continue;
            touched++;
            var oc = sim.Outcome;
            long s = oc.Server[(int)ServerMetric.Sites];
            if (s == 0) continue;
            withSites++; sites += s; maxSites = Math.Max(maxSites, s);
            hist[Math.Min(19, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)s))]++;
            if (s >= 64) { bigSites += s; bigServers++; }
            for (int p = 0; p < np; p++) { ue[p] += oc.Policy[p, (int)PolicyMetric.UeEvents]; panics[p] += oc.Policy[p, (int)PolicyMetric.HostPanics]; }
        }
        o.WriteLine($"touched {touched} withSites {withSites} sites {sites} max {maxSites} big(>=64) servers {bigServers} sites {bigSites}");
        o.WriteLine($"time s: untouched {tb[0]/(double)Stopwatch.Frequency:0.000} nosites {tb[1]/(double)Stopwatch.Frequency:0.000} small {tb[2]/(double)Stopwatch.Frequency:0.000} big {tb[3]/(double)Stopwatch.Frequency:0.000}");
        o.WriteLine("log2 hist: " + string.Join(" ", hist));
        for (int p = 0; p < np; p++) o.WriteLine($"{model.Policies[p],-20} ue {ue[p]} panics {panics[p]}");
    }
}

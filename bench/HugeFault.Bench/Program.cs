using BenchmarkDotNet.Running;
using HugeFault.Bench;

// `memory` prints the model-memory report; `quick` a Stopwatch check of PolicyBench cases; anything else goes to BenchmarkDotNet.
if (args is ["memory"]) { ModelMemory.Print(Console.Out); return; }
if (args is ["fleet", .. var f]) { FleetQuick.Run(Console.Out, f.Length > 0 ? int.Parse(f[0]) : 3, f.Length > 1 ? long.Parse(f[1]) : 1_000_000); return; }
if (args is ["tables"])
{
    for (int r = 0; r < 6; r++)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew(); int probes = 0;
        foreach (var p in HugeFault.Policies.RecoveryPolicies.Names) { var t = HugeFault.Fleet.EffectTable.Fresh(p, new Dictionary<string, string>()); t.Prepare(); probes += t.Probes; }
        Console.WriteLine($"tables {sw.Elapsed.TotalMilliseconds:0.0} ms, {probes} probes");
    }
    return;
}
if (args is ["stats"]) { FleetStats.Run(Console.Out, 1_000_000); return; }
if (args is ["quick", .. var cases]) { QuickTiming.Run(Console.Out, cases.Length > 0 ? cases : ["mainline:64", "hgm:64", "hgm-full-split:64", "vma-convert:64", "hgm:1024"]); return; }
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

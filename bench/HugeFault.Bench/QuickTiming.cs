using System.Diagnostics;
using HugeFault.Mm;

namespace HugeFault.Bench;

/// <summary>
/// A fast Stopwatch check of <see cref="PolicyBench"/>'s cases while working (not the reported figure: that is
/// BenchmarkDotNet's). Each case builds <c>n</c> kernels, times memory_failure() on each and prints the median and the
/// fastest. Run: <c>dotnet run -c Release --project bench/HugeFault.Bench -- quick [policy:mappers[:trace] ...]</c>.
/// </summary>
public static class QuickTiming
{
    public static void Run(TextWriter o, IEnumerable<string> cases)
    {
        foreach (var c in cases)
        {
            var parts = c.Split(':');
            bool trace = parts.Length > 2 && parts[2] == "trace";
            string policy = parts[0];
            int mappers = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            int n = mappers >= 1024 ? 5 : 15;
            var times = new List<double>();
            long allocated = 0;
            for (int i = 0; i < n + 2; i++)
            {
                var (k, pa) = PolicyBench.Build(policy, mappers, trace);
                long before = GC.GetAllocatedBytesForCurrentThread();
                var sw = Stopwatch.StartNew();
                k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
                sw.Stop();
                if (i >= 2) { times.Add(sw.Elapsed.TotalMicroseconds); allocated += GC.GetAllocatedBytesForCurrentThread() - before; }
            }
            times.Sort();
            o.WriteLine($"{policy,-18} {mappers,5} mappers{(trace ? " (trace)" : ""),-8}: median {times[times.Count / 2],12:0.0} us  min {times[0],12:0.0} us  allocated {allocated / n / 1024.0,10:0.0} KiB/op");
        }
    }
}

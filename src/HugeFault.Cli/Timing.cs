using System.Diagnostics;
using System.Globalization;

namespace HugeFault.Cli;

/// <summary>
/// HUGEFAULT_TIMING=1: a Stopwatch breakdown of one command on stderr (start-up before Main, each phase, the slowest
/// scenarios), for finding where the wall time goes. Off by default; never on stdout, so outputs stay byte-identical.
/// </summary>
internal sealed class Timing
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<(string Name, double Seconds)> _phases = new();
    private readonly List<(string Title, IReadOnlyList<(string Name, double Seconds)> Items)> _lists = new();
    private double _mark;

    /// <summary>Milliseconds from the process's start to Main (the runtime's own start-up), set by Main; null in-process.</summary>
    public static double? BeforeMainMs { get; set; }

    /// <summary>Milliseconds building the command tree and parsing the command line (the last parse in this process).</summary>
    public static double CommandLineMs { get; set; }

    /// <summary>A timer when HUGEFAULT_TIMING=1, else null (every use is `timing?.…`).</summary>
    public static Timing? FromEnvironment() => CliEnvironment.Get("HUGEFAULT_TIMING") == "1" ? new Timing() : null;

    /// <summary>Ends the phase running since the last call (or since the timer started) and names it.</summary>
    public void Phase(string name)
    {
        double now = _clock.Elapsed.TotalSeconds;
        _phases.Add((name, now - _mark));
        _mark = now;
    }

    /// <summary>The <paramref name="top"/> slowest of <paramref name="items"/>, printed under <paramref name="title"/>.</summary>
    public void Slowest(string title, IEnumerable<(string Name, double Seconds)> items, int top = 10) =>
        _lists.Add((title, items.OrderByDescending(i => i.Seconds).ThenBy(i => i.Name, StringComparer.Ordinal).Take(top).ToList()));

    public void Write(TextWriter err, string command)
    {
        var inv = CultureInfo.InvariantCulture;
        string before = (BeforeMainMs is { } b ? string.Create(inv, $"before Main {b:0} ms; ") : "") + string.Create(inv, $"command line {CommandLineMs:0} ms; ");
        err.WriteLine(string.Create(inv, $"timing {command}: {before}{string.Join("; ", _phases.Select(p => string.Create(inv, $"{p.Name} {p.Seconds * 1000:0} ms")))}; total {_clock.Elapsed.TotalMilliseconds:0} ms; " +
            $"JIT {System.Runtime.JitInfo.GetCompiledMethodCount()} methods in {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds:0} ms; GC {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)} (gen0/1/2), pause {GC.GetTotalPauseDuration().TotalMilliseconds:0} ms"));
        foreach (var (title, items) in _lists)
        {
            err.WriteLine($"timing {command}: {title}:");
            foreach (var (name, s) in items) err.WriteLine(string.Create(inv, $"  {s * 1000,8:0.0} ms  {name}"));
        }
    }
}

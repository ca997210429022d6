using System.CommandLine;
using HugeFault.Cli.Render;
using HugeFault.Fleet;
using HugeFault.Fleet.Replay;
using HugeFault.Reports.Output;

namespace HugeFault.Cli.Commands;

/// <summary>
/// <c>hugefault replay LOG</c>: an operator's real uncorrected errors (rasdaemon database or mcelog text) replayed through
/// every policy's per-event effects on a stated host layout. Thin: reading and replaying live in HugeFault.Fleet.Replay.
/// </summary>
internal static class ReplayCommand
{
    private static readonly Argument<string> Log = new("log") { Description = "rasdaemon's SQLite database (/var/lib/rasdaemon/ras-mc_event.db) or mcelog text output" };
    private static readonly Argument<string?> ConfigFile = CliOptions.OptionalFile("config", "fleet YAML for the host and policy parameters (optional)");
    private static readonly Option<long?> Memory = CliOptions.Long("--memory-gib", "host memory (default: the fleet server's, 1,024)", 1, 1 << 20, "GiB");
    private static readonly Option<long?> PoolStart = CliOptions.Long("--pool-start-gib", "first GiB of the 1 GiB hugetlb pool (default: kernel + 4 KiB memory, 64)", 0, 1 << 20, "GiB");
    private static readonly Option<long?> Pool = CliOptions.Long("--pool-gib", "size of the pool (default: the rest of memory)", 1, 1 << 20, "GiB");
    private static readonly Option<long?> VmGiB = CliOptions.Long("--vm-gib", "size of each VM (default 16)", 1, 1 << 16, "GiB");
    private static readonly Option<long?> Vms = CliOptions.Long("--vms", "VMs placed from the start of the pool (default: pool occupancy 85 %)", 0, 1 << 20);
    private static readonly Option<IReadOnlyList<string>?> Policy = CliOptions.Policies("comma-separated policies (default all)", () => FleetPolicies.Names);
    private static readonly Option<bool> Wide = new("--wide") { Description = "print the tables at full width" };

    public static Command Create()
    {
        var cmd = new Command("replay", "Replay a real error log (rasdaemon database or mcelog text) through every recovery policy on a stated host.");
        cmd.Arguments.Add(Log);
        cmd.Arguments.Add(ConfigFile);
        foreach (var o in new Option[] { Memory, PoolStart, Pool, VmGiB, Vms, Policy, Wide }) cmd.Options.Add(o);
        cmd.Action = new CliAction(Run);
        return cmd;
    }

    private static int Run(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
        var config = new FleetConfig();
        if (parse.GetValue(ConfigFile) is { } file)
        {
            if (!File.Exists(file)) throw new UsageException($"config file '{file}' not found");
            var (loaded, errors) = FleetConfigLoader.Load(File.ReadAllText(file), file);
            if (loaded is null) { foreach (var e in errors) stderr.WriteLine(e); return CliAction.UsageError; }
            config = loaded;
        }
        if (parse.GetValue(Policy) is { } p) config = config with { Policies = p };
        if (config.Validate() is { Count: > 0 } problems)
        {
            foreach (var e in problems) stderr.WriteLine($"hugefault replay: {e.Path} {e.Message}");
            return CliAction.UsageError;
        }
        var host = ReplayHost.Default(config, (int)(parse.GetValue(VmGiB) ?? 16));
        int memory = (int)(parse.GetValue(Memory) ?? host.MemoryGiB), start = (int)(parse.GetValue(PoolStart) ?? Math.Min(host.PoolStartGiB, memory - 1));
        int pool = (int)(parse.GetValue(Pool) ?? memory - start);
        int vms = (int)(parse.GetValue(Vms) ?? (long)(pool * config.Workload.PoolOccupancy / host.VmGiB));
        host = host with { MemoryGiB = memory, PoolStartGiB = start, PoolGiB = pool, Vms = vms };
        if (host.Problem() is { } hp) throw new UsageException(hp);
        string path = parse.GetValue(Log)!;
        var log = MemoryErrorLogs.Read(path);
        if (log.Error is not null) throw new UsageException(log.Error);
        if (ErrorReplay.Check(log, host) is { } bad) throw new UsageException(bad);
        var result = ErrorReplay.Run(log, host, config);
        Terminal.Write(ReplayReport.Build(result, log, $"hugefault replay {Path.GetFileName(path)}"), stdout, TerminalOptions.Detect(stdout, parse.GetValue(Wide)));
        return 0;
    }
}

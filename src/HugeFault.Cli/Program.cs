using System.CommandLine;
using HugeFault.Cli.Commands;

namespace HugeFault.Cli;

/// <summary>The <c>hugefault</c> command: a thin shell over the HugeFault library.</summary>
public static class Program
{
    /// <summary>
    /// The command tree, built once per process and shared by every <see cref="Run"/> (parsing only reads it). The
    /// commands' options are static, so building a tree per run re-attached each option to new parents and kept every
    /// old tree alive: an in-process caller (the test suite, the fuzz campaign) slowed down run after run.
    /// </summary>
    public static RootCommand Root() => Tree.Value;

    private static readonly Lazy<RootCommand> Tree = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>"hugefault" is the usage name whatever the executable is called.</summary>
    private static RootCommand Build()
    {
        var root = new RootCommand("HugeFault: what one bad cacheline in a HugeTLB page costs, under mainline Linux and every proposed recovery design.")
        {
            HelpName = "hugefault",
        };
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(ListCommand.Create());
        root.Subcommands.Add(FleetCommand.Create());
        root.Subcommands.Add(ReplayCommand.Create());
        root.Subcommands.Add(DramCommand.Create());
        root.Subcommands.Add(OracleCommand.Create());
        root.Subcommands.Add(RecoveryCommand.Create());
        root.Action = new CliAction((parse, o, e) =>
            throw new UsageException("give a command: compare, run, list, fleet, dram, oracle or recovery"));
        return root;
    }

    public static int Main(string[] args)
    {
        if (Environment.GetEnvironmentVariable("HUGEFAULT_TIMING") == "1")
            Timing.BeforeMainMs = (DateTime.Now - System.Diagnostics.Process.GetCurrentProcess().StartTime).TotalMilliseconds;
        return Run(args, Console.Out, Console.Error);
    }

    /// <summary>
    /// Runs one command line with its output on <paramref name="stdout"/> and <paramref name="stderr"/>: what Main does,
    /// and what tests call in-process. <paramref name="env"/>, when given, is the whole environment the command sees.
    /// </summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, IReadOnlyDictionary<string, string>? env = null)
    {
        using var scope = env is null ? null : CliEnvironment.Use(env);
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        var parse = Root().Parse(args);
        Timing.CommandLineMs = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = stdout, Error = stderr });
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // a bug in the model, not bad input: one line, and a way to get the details
            stderr.WriteLine($"hugefault: internal error: {e.GetType().Name}: {e.Message} (set HUGEFAULT_DEBUG=1 for the stack trace; please report it)");
            if (CliEnvironment.Get("HUGEFAULT_DEBUG") == "1") stderr.WriteLine(e);
            return 70;
        }
    }
}

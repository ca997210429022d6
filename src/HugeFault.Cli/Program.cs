using System.CommandLine;
using HugeFault.Cli.Commands;

namespace HugeFault.Cli;

/// <summary>The <c>hugefault</c> command: a thin shell over the HugeFault library.</summary>
public static class Program
{
    /// <summary>The command tree; "hugefault" is the usage name whatever the executable is called.</summary>
    public static RootCommand Root()
    {
        var root = new RootCommand("HugeFault: what one bad cacheline in a HugeTLB page costs, under mainline Linux and every proposed recovery design.")
        {
            HelpName = "hugefault",
        };
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(ListCommand.Create());
        root.Subcommands.Add(FleetCommand.Create());
        root.Subcommands.Add(DramCommand.Create());
        root.Subcommands.Add(OracleCommand.Create());
        root.Subcommands.Add(RecoveryCommand.Create());
        root.Action = new CliAction((parse, o, e) =>
            throw new UsageException("give a command: compare, run, list, fleet, dram, oracle or recovery"));
        return root;
    }

    public static int Main(string[] args)
    {
        var parse = Root().Parse(args);
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // a bug in the model, not bad input: one line, and a way to get the details
            Console.Error.WriteLine($"hugefault: internal error: {e.GetType().Name}: {e.Message} (set HUGEFAULT_DEBUG=1 for the stack trace; please report it)");
            if (Environment.GetEnvironmentVariable("HUGEFAULT_DEBUG") == "1") Console.Error.WriteLine(e);
            return 70;
        }
    }
}

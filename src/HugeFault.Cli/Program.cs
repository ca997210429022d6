using System.CommandLine;
using HugeFault.Cli.Commands;

namespace HugeFault.Cli;

/// <summary>The <c>hugefault</c> command: a thin shell over the HugeFault library.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("HugeFault: what one bad cacheline in a HugeTLB page costs, under mainline Linux and every proposed recovery design.");
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(DramCommand.Create());
        root.Subcommands.Add(OracleCommand.Create());
        var parse = root.Parse(args);
        return parse.Invoke();
    }
}

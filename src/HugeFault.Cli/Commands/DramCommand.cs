using System.CommandLine;

namespace HugeFault.Cli.Commands;

/// <summary>`hugefault dram`: rank-level DRAM fault Monte Carlo (placeholder until implemented).</summary>
internal static class DramCommand
{
    public static Command Create()
    {
        var cmd = new Command("dram", "Rank-level DRAM fault/ECC Monte Carlo (not yet implemented).");
        cmd.SetAction(_ => { Console.Error.WriteLine("hugefault dram: not implemented yet"); return 2; });
        return cmd;
    }
}

using System.CommandLine;

namespace HugeFault.Tests.Cli;

/// <summary>The command tree is built once per process: every in-process run parses against the same tree.</summary>
public class CommandTreeTests
{
    private static IEnumerable<Symbol> All(Command c) =>
        new Symbol[] { c }.Concat(c.Options).Concat(c.Arguments).Concat(c.Subcommands.SelectMany(All));

    [Fact]
    public void Repeated_runs_share_one_tree_and_attach_no_option_to_new_parents()
    {
        var root = HugeFault.Cli.Program.Root();
        Assert.Same(root, HugeFault.Cli.Program.Root());
        // every parent of every option: the tests call the CLI through Program.Run only, so nothing else re-parents them
        int Parents() => All(root).Distinct().Sum(s => s.Parents.Count());
        int before = Parents();
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(2, CliProcess.InProcess("fleet", "--servers", "-1").Exit);
            Assert.Equal(0, CliProcess.InProcess("list").Exit);
        }
        // building a tree per run (the old Program.Run) added every static option of every command to a new parent each time
        Assert.Equal(before, Parents());
        Assert.Same(root, HugeFault.Cli.Program.Root());
    }
}

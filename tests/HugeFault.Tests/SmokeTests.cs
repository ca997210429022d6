namespace HugeFault.Tests;

public class SmokeTests
{
    [Fact]
    public void The_cli_rejects_an_unknown_command_with_a_nonzero_exit()
    {
        Assert.NotEqual(0, HugeFault.Cli.Program.Main(["no-such-command"]));
    }
}

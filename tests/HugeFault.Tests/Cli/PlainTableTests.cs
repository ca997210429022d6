using HugeFault.Cli.Render;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Cli;

/// <summary>
/// `run`'s fast table renderer (PlainTable) draws byte for byte what Spectre.Console draws for the same trace table,
/// on every built-in scenario, at the usual width and at narrower ones (where cells wrap and columns collapse); and it
/// takes the table, rather than declining to Spectre, for nearly all of them (else it would not be what `run` uses).
/// </summary>
public class PlainTableTests
{
    private static readonly Lazy<List<ScenarioRun>> Runs = new(() =>
        [.. BuiltinScenarios.Names.Select(BuiltinScenarios.Load).SelectMany(sc => new[] { ScenarioRunner.Run(sc), ScenarioRunner.Run(sc, "hgm") })]);

    private static string Spectre(ScenarioRun run, int width)
    {
        var (c, text) = Out.Buffer(new StreamWriter(Stream.Null, new System.Text.UTF8Encoding(false)));
        c.Profile.Width = width;
        c.Write(ScenarioRender.SpectreTable(run));
        return text.ToString();
    }

    [Theory]
    [InlineData(120)]
    [InlineData(80)]
    [InlineData(57)]
    public void The_fast_renderer_draws_what_Spectre_draws(int width)
    {
        int drawn = 0;
        foreach (var run in Runs.Value)
        {
            var fast = new StringWriter();
            if (!ScenarioRender.TryPlainTable(fast, width, run)) { Assert.Equal("", fast.ToString()); continue; }
            drawn++;
            Assert.True(Spectre(run, width) == fast.ToString(), $"{run.Scenario.File} under {run.Policy} at width {width}: the fast renderer's table differs from Spectre's");
        }
        if (width == 120) Assert.True(drawn >= Runs.Value.Count * 9 / 10, $"the fast renderer declined {Runs.Value.Count - drawn} of {Runs.Value.Count} tables at width 120");
        else Assert.True(drawn > 0, $"the fast renderer declined every table at width {width}");
    }
}

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
    private static readonly Dictionary<string, Lazy<List<ScenarioRun>>> Runs = new[] { "", "hgm" }.ToDictionary(p => p,
        p => new Lazy<List<ScenarioRun>>(() => [.. BuiltinScenarios.Names.Select(n => ScenarioRunner.Run(BuiltinScenarios.Load(n), p.Length == 0 ? null : p))]));

    private static string Spectre(ScenarioRun run, int width)
    {
        var (c, text) = Out.Buffer(new StreamWriter(Stream.Null, new System.Text.UTF8Encoding(false)));
        c.Profile.Width = width;
        c.Write(ScenarioRender.SpectreTable(run));
        return text.ToString();
    }

    /// <summary>Each built-in scenario under its own policy ("") or under hgm (its 4 KiB splits make other traces).</summary>
    [Theory]
    [InlineData(120, "")]
    [InlineData(80, "hgm")]
    [InlineData(57, "")]
    public void The_fast_renderer_draws_what_Spectre_draws(int width, string policy)
    {
        int drawn = 0;
        var runs = Runs[policy].Value;
        foreach (var run in runs)
        {
            var fast = new StringWriter();
            if (!ScenarioRender.TryPlainTable(fast, width, run)) { Assert.Equal("", fast.ToString()); continue; }
            drawn++;
            Assert.True(Spectre(run, width) == fast.ToString(), $"{run.Scenario.File} under {run.Policy} at width {width}: the fast renderer's table differs from Spectre's");
        }
        if (width == 120) Assert.True(drawn >= runs.Count * 9 / 10, $"the fast renderer declined {runs.Count - drawn} of {runs.Count} tables at width 120");
        else Assert.True(drawn > 0, $"the fast renderer declined every table at width {width}");
    }
}

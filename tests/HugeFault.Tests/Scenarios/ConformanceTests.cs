using HugeFault.Scenarios;

namespace HugeFault.Tests.Scenarios;

/// <summary>Every built-in mainline conformance scenario (kernel-behaviour.md §5) passes under its own policy.</summary>
public class ConformanceTests
{
    public static TheoryData<string> MainlineScenarios()
    {
        var data = new TheoryData<string>();
        foreach (var n in BuiltinScenarios.Under("conformance/mainline/")) data.Add(n);
        return data;
    }

    [Fact]
    public void There_are_mainline_conformance_scenarios_to_run()
    {
        Assert.True(BuiltinScenarios.Under("conformance/mainline/").Count() >= 24);
    }

    [Theory]
    [MemberData(nameof(MainlineScenarios))]
    public void A_mainline_conformance_scenario_passes_under_its_own_policy(string name)
    {
        var sc = BuiltinScenarios.Load(name);
        var run = ScenarioRunner.Run(sc);
        Assert.True(run.Passed, $"{name} failed:\n" + string.Join("\n", run.Failures));
    }

    [Fact]
    public void Every_scenario_file_in_the_repository_parses_without_error()
    {
        var dir = Path.Combine(RepoPaths.Root, "scenarios");
        var files = Directory.EnumerateFiles(dir, "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(files);
        var problems = new List<string>();
        foreach (var f in files)
        {
            var (sc, errors) = ScenarioParser.ParseFile(f);
            if (sc is null || errors.Count > 0) problems.AddRange(errors.Select(e => e.ToString()).DefaultIfEmpty($"{f}: no scenario"));
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void Every_scenario_file_in_the_repository_is_embedded_as_a_builtin()
    {
        var dir = Path.Combine(RepoPaths.Root, "scenarios");
        var onDisk = Directory.EnumerateFiles(dir, "*.yaml", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(dir, f).Replace('\\', '/')).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(onDisk, BuiltinScenarios.Names.Where(n => n.EndsWith(".yaml", StringComparison.Ordinal)).ToList());
    }
}

/// <summary>Locates the repository (the folder holding HugeFault.slnx) from the test binary's folder.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "HugeFault.slnx"))) return d.FullName;
        throw new InvalidOperationException("HugeFault.slnx not found above " + AppContext.BaseDirectory);
    }
}

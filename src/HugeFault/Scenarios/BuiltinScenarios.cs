using System.Reflection;

namespace HugeFault.Scenarios;

/// <summary>The scenario files shipped inside the library (the repository's scenarios/ folder, embedded at build time).</summary>
public static class BuiltinScenarios
{
    private const string Prefix = "scenarios/";

    /// <summary>Names like "conformance/mainline/05-inuse-shared-injector.yaml", sorted.</summary>
    public static IReadOnlyList<string> Names { get; } = typeof(BuiltinScenarios).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)).Select(n => n[Prefix.Length..].Replace('\\', '/'))
        .OrderBy(n => n, StringComparer.Ordinal).ToList();

    public static string Read(string name)
    {
        var asm = typeof(BuiltinScenarios).Assembly;
        var res = asm.GetManifestResourceNames().First(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n[Prefix.Length..].Replace('\\', '/') == name);
        using var s = asm.GetManifestResourceStream(res)!;
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>Parses a built-in scenario; built-ins are validated by the test suite, so errors here are bugs.</summary>
    public static Scenario Load(string name)
    {
        var (sc, errors) = ScenarioParser.Parse("builtin:" + name, Read(name));
        if (sc is null) throw new InvalidOperationException($"built-in scenario {name} is invalid: {string.Join("; ", errors)}");
        return sc;
    }

    /// <summary>Built-in scenarios whose name starts with the prefix (e.g. "conformance/mainline/").</summary>
    public static IEnumerable<string> Under(string prefix) => Names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal));
}

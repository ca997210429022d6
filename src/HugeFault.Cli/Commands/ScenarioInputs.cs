using HugeFault.Scenarios;

namespace HugeFault.Cli.Commands;

/// <summary>Turns FILE arguments (files, folders, builtin:NAME, or nothing = all built-ins) into parsed scenarios or errors.</summary>
internal static class ScenarioInputs
{
    /// <summary>
    /// Parses every scenario the arguments name, on <paramref name="threads"/> threads; scenarios and errors come in
    /// argument order (a folder's files in ordinal order), whatever the thread count.
    /// </summary>
    public static (List<Scenario> Scenarios, List<string> Errors) Load(IReadOnlyList<string> args, string builtinPrefix = "", int threads = 1)
    {
        var sources = new List<Func<(Scenario? Scenario, IReadOnlyList<ScenarioError> Errors)>>();
        var errors = new List<string>();
        var errorAt = new List<(int Before, string Error)>(); // argument errors, placed among the parse errors in order
        void Builtin(string n) => sources.Add(() => ScenarioParser.Parse("builtin:" + n, BuiltinScenarios.Read(n)));
        if (args.Count == 0)
            foreach (var n in BuiltinScenarios.Under(builtinPrefix)) Builtin(n);
        foreach (var a in args)
        {
            if (a.StartsWith("builtin:", StringComparison.Ordinal))
            {
                var names = BuiltinScenarios.Names.Where(n => n == a[8..] || n.StartsWith(a[8..], StringComparison.Ordinal)).ToList();
                if (names.Count == 0) errorAt.Add((sources.Count, $"{a}: no built-in scenario by that name (try 'hugefault list')"));
                foreach (var n in names) Builtin(n);
                continue;
            }
            IEnumerable<string> files;
            if (Directory.Exists(a)) files = Directory.EnumerateFiles(a, "*.yaml", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal);
            else if (File.Exists(a)) files = [a];
            else { errorAt.Add((sources.Count, $"{a}: no such file or directory (give a scenario .yaml file, a folder, or builtin:NAME)")); continue; }
            foreach (var f in files) sources.Add(() => ScenarioParser.ParseFile(f));
        }
        var list = new List<Scenario>();
        int next = 0;
        OrderedParallel.Run(sources.Count, threads, i => sources[i](), (i, r) =>
        {
            for (; next < errorAt.Count && errorAt[next].Before <= i; next++) errors.Add(errorAt[next].Error);
            if (r.Scenario is null) errors.AddRange(r.Errors.Select(e => e.ToString())); else list.Add(r.Scenario);
        });
        for (; next < errorAt.Count; next++) errors.Add(errorAt[next].Error);
        return (list, errors);
    }
}

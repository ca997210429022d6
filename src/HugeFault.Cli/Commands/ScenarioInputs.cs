using HugeFault.Scenarios;

namespace HugeFault.Cli.Commands;

/// <summary>Turns FILE arguments (files, folders, builtin:NAME, or nothing = all built-ins) into parsed scenarios or errors.</summary>
internal static class ScenarioInputs
{
    public static (List<Scenario> Scenarios, List<string> Errors) Load(IReadOnlyList<string> args, string builtinPrefix = "")
    {
        var list = new List<Scenario>(); var errors = new List<string>();
        if (args.Count == 0)
        {
            foreach (var n in BuiltinScenarios.Under(builtinPrefix))
            {
                var (sc, errs) = ScenarioParser.Parse("builtin:" + n, BuiltinScenarios.Read(n));
                if (sc is null) errors.AddRange(errs.Select(e => e.ToString())); else list.Add(sc);
            }
            return (list, errors);
        }
        foreach (var a in args)
        {
            if (a.StartsWith("builtin:", StringComparison.Ordinal))
            {
                var names = BuiltinScenarios.Names.Where(n => n == a[8..] || n.StartsWith(a[8..], StringComparison.Ordinal)).ToList();
                if (names.Count == 0) { errors.Add($"{a}: no built-in scenario by that name (try 'hugefault list')"); continue; }
                foreach (var n in names)
                {
                    var (sc, errs) = ScenarioParser.Parse("builtin:" + n, BuiltinScenarios.Read(n));
                    if (sc is null) errors.AddRange(errs.Select(e => e.ToString())); else list.Add(sc);
                }
                continue;
            }
            IEnumerable<string> files;
            if (Directory.Exists(a)) files = Directory.EnumerateFiles(a, "*.yaml", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal);
            else if (File.Exists(a)) files = [a];
            else { errors.Add($"{a}: no such file or directory (give a scenario .yaml file, a folder, or builtin:NAME)"); continue; }
            foreach (var f in files)
            {
                var (sc, errs) = ScenarioParser.ParseFile(f);
                if (sc is null) errors.AddRange(errs.Select(e => e.ToString())); else list.Add(sc);
            }
        }
        return (list, errors);
    }
}

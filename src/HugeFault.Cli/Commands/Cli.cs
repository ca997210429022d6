using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Globalization;
using HugeFault.Policies;

namespace HugeFault.Cli.Commands;

/// <summary>Bad input: one line on stderr, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The action every command uses: parse errors and <see cref="UsageException"/>s become one line
/// "hugefault CMD: message (see 'hugefault CMD --help')" on stderr and exit code 2, before any work starts.
/// </summary>
internal sealed class CliAction(Func<ParseResult, TextWriter, TextWriter, int> run) : SynchronousCommandLineAction
{
    public const int UsageError = 2;

    public override bool ClearsParseErrors => true;

    public override int Invoke(ParseResult parse)
    {
        var config = parse.InvocationConfiguration;
        string cmd = CommandPath(parse);
        try
        {
            if (parse.Errors.Count > 0) throw new UsageException(Describe(parse.Errors[0]));
            if (parse.UnmatchedTokens.Count > 0)
            {
                string tok = parse.UnmatchedTokens[0];
                throw new UsageException(tok.StartsWith('-') ? $"unknown option '{tok}'" : $"unexpected argument '{tok}'");
            }
            CliOptions.CheckExclusive(parse);
            using var outputs = OutputFiles.Scope(); // output files checked by this command, released when it ends
            return run(parse, config.Output, config.Error);
        }
        catch (UsageException e)
        {
            config.Error.WriteLine($"{cmd}: {e.Message} (see '{cmd} --help')");
            return UsageError;
        }
    }

    /// <summary>"hugefault fleet merge" for the command that was parsed.</summary>
    public static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (SymbolResult? r = parse.CommandResult; r is not null; r = r.Parent)
            if (r is CommandResult c) names.Insert(0, c.Parent is null ? "hugefault" : c.Command.Name);
        return string.Join(" ", names);
    }

    /// <summary>System.CommandLine's messages, reworded where a user would be misled.</summary>
    private static string Describe(ParseError e)
    {
        string m = e.Message.TrimEnd('.');
        const string unrec = "Unrecognized command or argument '";
        if (m.StartsWith(unrec, StringComparison.Ordinal))
        {
            string tok = m[unrec.Length..].TrimEnd('\'');
            return tok.StartsWith('-') ? $"unknown option '{tok}'" : $"unexpected argument '{tok}'";
        }
        return m;
    }
}

/// <summary>Typed options and validators shared by the commands.</summary>
internal static class CliOptions
{
    /// <summary>Positional file arguments: a token that looks like an option is an unknown option, not a missing file.</summary>
    public static Argument<string[]> Files(string name, string description, ArgumentArity arity)
    {
        var a = new Argument<string[]>(name) { Description = description, Arity = arity };
        a.Validators.Add(r =>
        {
            foreach (var t in r.Tokens)
                if (t.Value.StartsWith('-') && t.Value.Length > 1) { r.AddError($"unknown option '{t.Value}'"); return; }
        });
        return a;
    }

    /// <summary>An optional single file argument, with the same unknown-option check.</summary>
    public static Argument<string?> OptionalFile(string name, string description)
    {
        var a = new Argument<string?>(name) { Description = description, Arity = ArgumentArity.ZeroOrOne };
        a.Validators.Add(r =>
        {
            foreach (var t in r.Tokens)
                if (t.Value.StartsWith('-') && t.Value.Length > 1) { r.AddError($"unknown option '{t.Value}'"); return; }
        });
        return a;
    }

    public static Option<long?> Long(string name, string description, long min, long max, string helpName = "n") => new(name)
    {
        Description = description,
        HelpName = helpName,
        CustomParser = r =>
        {
            string s = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
            if (long.TryParse(s.Replace("_", "").Replace(",", ""), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ||
                (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e18 && (v = (long)d) == v))
            {
                if (v >= min && v <= max) return v;
                r.AddError($"{name} must be between {min.ToString("N0", CultureInfo.InvariantCulture)} and {max.ToString("N0", CultureInfo.InvariantCulture)} (got {s})");
                return null;
            }
            r.AddError($"{name} must be a whole number (got '{s}')");
            return null;
        },
    };

    public static Option<double?> Double(string name, string description, string helpName) => new(name)
    {
        Description = description,
        HelpName = helpName,
        CustomParser = r =>
        {
            string s = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
            if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)) return v;
            r.AddError($"{name} must be a number (got '{s}')");
            return null;
        },
    };

    /// <summary>--policy a,b: checked against <paramref name="known"/>.</summary>
    public static Option<IReadOnlyList<string>?> Policies(string description, Func<IReadOnlyList<string>> known) => new("--policy")
    {
        Description = description,
        HelpName = "a,b",
        CustomParser = r =>
        {
            var names = string.Join(",", r.Tokens.Select(t => t.Value)).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
            if (names.Count == 0) { r.AddError("--policy: give at least one policy, e.g. --policy mainline,hgm"); return null; }
            foreach (var n in names)
                if (!known().Contains(n)) { r.AddError($"--policy: unknown policy '{n}'; use {string.Join(", ", known())}"); return null; }
            if (names.Distinct().Count() != names.Count) { r.AddError("--policy lists a policy twice"); return null; }
            return names;
        },
    };

    public static Option<IReadOnlyList<string>?> RecoveryPolicyList() =>
        Policies("comma-separated policies (default: all: " + string.Join(",", RecoveryPolicies.Names) + ")", () => RecoveryPolicies.Names);

    /// <summary>Refuses --json with --csv on a command (the validator runs at parse time).</summary>
    public static void JsonXorCsv(Command cmd, Option<bool> json, Option<bool> csv) => Exclusive[cmd] = (json, csv);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Command, (Option<bool>, Option<bool>)> Exclusive = new();

    /// <summary>Checks the options registered with <see cref="JsonXorCsv"/> for the parsed command.</summary>
    public static void CheckExclusive(ParseResult parse)
    {
        if (Exclusive.TryGetValue(parse.CommandResult.Command, out var p) && parse.GetValue(p.Item1) && parse.GetValue(p.Item2))
            throw new UsageException("--json and --csv: choose one output format");
    }

    /// <summary>The extension of an output path, lower case, without the dot.</summary>
    public static string Ext(string path) => Path.GetExtension(path).TrimStart('.').ToLowerInvariant();
}

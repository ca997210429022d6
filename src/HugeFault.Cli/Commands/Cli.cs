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

/// <summary>Output files: checked before any simulation, written atomically (temp file + rename).</summary>
internal static class OutputFiles
{
    /// <summary>Fails with a usage error unless a file can be created at <paramref name="path"/>.</summary>
    public static void CheckFile(string flag, string path)
    {
        if (Directory.Exists(path)) throw new UsageException($"{flag} '{path}' is a directory; give a file name");
        string dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        if (!Directory.Exists(dir)) throw new UsageException($"{flag} '{path}': folder '{dir}' does not exist; create it first");
        Probe(flag, path, dir);
    }

    /// <summary>Creates the folder if needed; fails with a usage error unless files can be written in it.</summary>
    public static void CheckDir(string flag, string dir)
    {
        if (File.Exists(dir)) throw new UsageException($"{flag} '{dir}' is a file; give a folder");
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UsageException($"{flag} '{dir}': cannot create the folder ({e.Message})"); }
        Probe(flag, dir, dir);
    }

    private static void Probe(string flag, string what, string dir)
    {
        string probe = Path.Combine(dir, $".hugefault-probe-{Environment.ProcessId}");
        try { File.WriteAllText(probe, ""); File.Delete(probe); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{flag} '{what}': cannot write there ({e.GetType().Name}: {e.Message})");
        }
    }

    /// <summary>
    /// Writes through a temp file in the same folder, then renames it over <paramref name="path"/>. A SIGTERM, SIGINT or
    /// SIGHUP while writing (scancel, a Kubernetes pod stop, Ctrl-C; a streamed Parquet file is open for the whole run)
    /// deletes the temp file before the process ends, so no partial file is left; only SIGKILL leaves the hidden temp.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string tmp = Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        void Remove(System.Runtime.InteropServices.PosixSignalContext _) { try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { } }
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Remove);
        using var intr = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Remove);
        using var hup = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGHUP, Remove);
        try
        {
            using (var s = File.Create(tmp)) write(s);
            File.Move(tmp, full, overwrite: true);
        }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
    }

    public static void WriteText(string path, string text) => Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false)); w.Write(text); });
}

using System.Diagnostics;

namespace HugeFault.Tests.Cli;

/// <summary>
/// Runs the CLI as a user would. <see cref="InProcess"/> calls <c>Program.Run</c> with its own writers and environment
/// (fast; what most tests use); <see cref="Run"/> starts the real binary, for what only the process boundary shows
/// (exit codes, stderr, the COLUMNS variable as the shell sets it).
/// </summary>
internal static class CliProcess
{
    public static (int Exit, string Out, string Err) Run(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "HugeFault.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment.Remove("COLUMNS");
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "hugefault did not finish");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public static (int Exit, string Out, string Err) Run(params string[] args) => Run(null, args);

    /// <summary>The same command in this process: <paramref name="env"/> is the whole environment it sees (none when null).</summary>
    public static (int Exit, string Out, string Err) InProcess(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = HugeFault.Cli.Program.Run(args, stdout, stderr, env ?? new Dictionary<string, string>());
        return (exit, stdout.ToString(), stderr.ToString());
    }

    public static (int Exit, string Out, string Err) InProcess(params string[] args) => InProcess(null, args);

    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "HugeFault.slnx"))) return d.FullName;
        throw new InvalidOperationException("repository root not found");
    }
}

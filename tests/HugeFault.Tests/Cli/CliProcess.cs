using System.Diagnostics;

namespace HugeFault.Tests.Cli;

/// <summary>Runs the real CLI binary, as a user would: exit code, stdout, stderr, with chosen environment variables.</summary>
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

    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "HugeFault.slnx"))) return d.FullName;
        throw new InvalidOperationException("repository root not found");
    }
}

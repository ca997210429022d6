using System.Diagnostics;

namespace HugeFault.Tests.Cli;

/// <summary>
/// The Native AOT executable ./hugefault builds (src/HugeFault.Cli/bin/aot) prints what the JIT build prints: a few
/// commands through it, compared byte for byte with the same command line run in this process. Trimming and AOT
/// compilation can drop what only reflection reaches (the policy registry, the study identity's config properties,
/// serializer metadata), which would show here as a missing policy, another study id or a different file. Skipped,
/// with the reason, when the wrapper has not made a current AOT build (no clang/gcc, or a source newer than it).
/// </summary>
public sealed class NativeAotTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hugefault-aot-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The AOT executable, or why there is none to test.</summary>
    private static string AotBinary()
    {
        string root = CliProcess.RepoRoot();
        string stamp = Path.Combine(root, "src/HugeFault.Cli/bin/hugefault/built");
        string exe = File.Exists(stamp) ? File.ReadAllText(stamp).Trim() : "";
        if (!exe.EndsWith("/bin/aot/HugeFault.Cli", StringComparison.Ordinal) || !File.Exists(exe))
            Assert.Skip(exe.Length == 0 ? "no ./hugefault build yet: run ./hugefault once (it makes a Native AOT build where clang or gcc is present)"
                : $"./hugefault's last build is not Native AOT ({exe}; see src/HugeFault.Cli/bin/hugefault/build.log)");
        // the wrapper's own rule: a source, project or scenario file newer than its last build makes that build stale
        var built = File.GetLastWriteTimeUtc(stamp);
        string[] inputs = ["src/HugeFault", "src/HugeFault.Reports", "src/HugeFault.Cli", "src/HugeFault.Generators", "scenarios"];
        var newer = inputs.SelectMany(d => Directory.EnumerateFiles(Path.Combine(root, d), "*", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .FirstOrDefault(f => File.GetLastWriteTimeUtc(f) > built);
        if (newer is not null) Assert.Skip($"the Native AOT build is older than {Path.GetRelativePath(root, newer)}: run ./hugefault to rebuild it");
        // the version (with its commit) is part of a fleet study's identity: a build of another commit prints other ids
        string version = Aot(exe, "--version").Out.Trim();
        if (version != HugeFault.Fleet.Output.StudyIdentity.ToolVersion)
            Assert.Skip($"the Native AOT build is of another commit ({version}, this test build {HugeFault.Fleet.Output.StudyIdentity.ToolVersion}): run ./hugefault to rebuild it");
        return exe;
    }

    private static (int Exit, string Out, string Err) Aot(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = CliProcess.RepoRoot() };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("COLUMNS");
        psi.Environment.Remove("HUGEFAULT_TIMING");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "the AOT hugefault did not finish");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void The_aot_executable_prints_what_the_jit_build_prints()
    {
        string exe = AotBinary();
        string root = CliProcess.RepoRoot();
        string scenarios = Path.Combine(root, "scenarios/conformance");
        string[][] commands =
        [
            ["list"],
            ["run", scenarios],
            ["run", scenarios, "--json", "--policy", "hgm"],
            ["oracle", "--model-only", scenarios],
            ["compare", "builtin:policies", "--json"],
            ["fleet", "--servers", "2000", "--json"],
            ["fleet", "--servers", "2000", "--csv", "--policy", "mainline,hgm,userspace-migrate"],
        ];
        foreach (var args in commands)
        {
            var jit = CliProcess.InProcess(args);
            var aot = Aot(exe, args);
            Assert.True(jit.Exit == aot.Exit, $"{string.Join(' ', args)}: exit {aot.Exit} from the AOT build, {jit.Exit} in-process; stderr: {aot.Err}");
            Assert.True(jit.Out == aot.Out, $"{string.Join(' ', args)}: the AOT build's stdout differs from the in-process run's");
        }
    }

    [Fact]
    public void The_aot_executable_writes_the_same_parquet_file_and_gives_the_same_one_line_errors()
    {
        string exe = AotBinary();
        string jitFile = Path.Combine(_dir, "jit.parquet"), aotFile = Path.Combine(_dir, "aot.parquet");
        Assert.Equal(0, CliProcess.InProcess("fleet", "--servers", "2000", "--out", jitFile).Exit);
        Assert.Equal(0, Aot(exe, "fleet", "--servers", "2000", "--out", aotFile).Exit);
        Assert.Equal(File.ReadAllBytes(jitFile), File.ReadAllBytes(aotFile));

        string bad = Path.Combine(_dir, "bad.yaml");
        File.WriteAllText(bad, "name: x\nhost: {memory: 8G, policy: no-such-policy}\nprocesses: [A]\nsteps: []\n");
        foreach (var args in new[] { new[] { "run", "--no-such-option" }, new[] { "run", bad }, new[] { "fleet", "--servers", "0" } })
        {
            var jit = CliProcess.InProcess(args);
            var aot = Aot(exe, args);
            Assert.Equal(2, aot.Exit);
            Assert.Equal(jit.Exit, aot.Exit);
            Assert.Equal(jit.Err, aot.Err);
            Assert.Single(aot.Err.TrimEnd('\n').Split('\n'));
        }
    }
}

using System.Diagnostics;
using HugeFault.Fleet;
using HugeFault.Tests.Cli;

namespace HugeFault.Tests.Fleet;

/// <summary>The shipped cluster files: the Slurm array end to end (opt-in), the study config, the Kubernetes Job and the Dockerfile.</summary>
public class ClusterScriptTests
{
    internal static (int Exit, string Output) Bash(string script, int timeoutMs, params string[] args)
    {
        var psi = new ProcessStartInfo("bash", [script, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(timeoutMs)) { p.Kill(entireProcessTree: true); return (-1, output + err.Result + "\n(timed out)"); }
        return (p.ExitCode, output + err.Result);
    }

    [Fact]
    public void The_shipped_slurm_array_merges_byte_identical_to_an_unsharded_run_on_a_localhost_cluster()
    {
        // Opt-in (.ci/run sets HUGEFAULT_SLURM=1 when tools/slurm/install.sh succeeds): about a minute, mostly slurmd start-up.
        if (Environment.GetEnvironmentVariable("HUGEFAULT_SLURM") != "1")
            Assert.Skip("HUGEFAULT_SLURM is not 1: the single-node Slurm test (tools/slurm/test.sh) is opt-in; .ci/run enables it when slurm-wlm and munge install");
        var (exit, output) = Bash(Path.Combine(CliProcess.RepoRoot(), "tools/slurm/test.sh"), 480_000);
        string last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
        if (exit == 77) Assert.Skip(last);
        Assert.True(exit == 0, output);
        Assert.Contains("PASSED: 3 array tasks merged byte-identical to the unsharded run", output);
        Assert.Contains("already holds shard 1/3", output);
    }

    [Fact]
    public void The_dockerfile_builds_an_image_that_runs_a_fleet_study()
    {
        // Opt-in (minutes, and it needs a container engine that can pull the .NET base images).
        if (Environment.GetEnvironmentVariable("HUGEFAULT_DOCKER") != "1")
            Assert.Skip("HUGEFAULT_DOCKER is not 1: building the image (tools/docker/build.sh) is opt-in");
        var (exit, output) = Bash(Path.Combine(CliProcess.RepoRoot(), "tools/docker/build.sh"), 1_200_000);
        if (exit == 77) Assert.Skip(output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last());
        Assert.True(exit == 0, output);
        Assert.Contains("built and ran hugefault:", output);
    }

    [Fact]
    public void The_shipped_study_config_parses_and_the_cluster_files_use_explicit_sharding_and_a_merge_step()
    {
        string root = CliProcess.RepoRoot();
        var (config, errors) = FleetConfigLoader.Load(File.ReadAllText(Path.Combine(root, "docs/fleet.yaml")), "docs/fleet.yaml");
        Assert.Empty(errors);
        Assert.Equal((100_000_000L, 5.0, 3UL), (config!.Servers, config.Years, config.Seed));
        string slurm = File.ReadAllText(Path.Combine(root, "docs/slurm-array.sh"));
        Assert.Contains("--shard auto", slurm);
        Assert.Contains("{study}-{shard}", slurm);
        string k8s = File.ReadAllText(Path.Combine(root, "docs/k8s-indexed-job.yaml"));
        foreach (var needed in new[] { "ReadWriteMany", "backoffLimitPerIndex", "--shard auto", "fleet merge", "completionMode: Indexed" })
            Assert.Contains(needed, k8s);
        Assert.DoesNotContain("backoffLimit: ", k8s);
        string docker = File.ReadAllText(Path.Combine(root, "Dockerfile"));
        Assert.Contains("dotnet publish", docker);
        Assert.Contains("ENTRYPOINT", docker);
    }
}

using System.Diagnostics;
using System.Text.Json;
using HugeFault.Fleet;
using HugeFault.Fleet.Output;
using HugeFault.Tests.Cli;

namespace HugeFault.Tests.Fleet;

/// <summary>Shards that cannot be merged wrong: identity, coverage, explicit shard choice, atomic and idempotent outputs.</summary>
public class ShardMergeTests
{
    private static readonly string Dir = Path.Combine(Path.GetTempPath(), "hugefault-shard-tests", Guid.NewGuid().ToString("N"));

    private static string[] Study(params string[] extra) => ["fleet", "--servers", "400", "--seed", "7", "--policy", "mainline,hgm", "--json", .. extra];

    private static string Shard(string name, int k, int n, params string[] extra)
    {
        var (exit, output, err) = CliProcess.InProcess([.. Study(extra), "--shard", $"{k}/{n}"]);
        Assert.True(exit == 0, err);
        Directory.CreateDirectory(Dir);
        string path = Path.Combine(Dir, name);
        File.WriteAllText(path, output);
        return path;
    }

    private static string OneLine(string err)
    {
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        return lines[0];
    }

    [Fact]
    public void Complete_shards_merge_in_any_order_to_the_unsharded_json_and_a_partial_merge_is_labelled_partial()
    {
        var whole = CliProcess.InProcess(Study());
        string a = Shard("c0.json", 0, 3), b = Shard("c1.json", 1, 3), c = Shard("c2.json", 2, 3);
        var forward = CliProcess.InProcess("fleet", "merge", a, b, c, "--json");
        var backward = CliProcess.InProcess("fleet", "merge", c, a, b, "--json");
        Assert.Equal(0, forward.Exit);
        Assert.Equal(whole.Out, forward.Out);
        Assert.Equal(forward.Out, backward.Out);
        using (var doc = JsonDocument.Parse(whole.Out))
        {
            var study = doc.RootElement.GetProperty("study");
            Assert.Matches("^[0-9a-f]{12}$", study.GetProperty("id").GetString());
            Assert.False(study.GetProperty("partial").GetBoolean());
            Assert.Equal("7", study.GetProperty("fields").GetProperty("seed").GetString());
            Assert.Equal("24", study.GetProperty("fields").GetProperty("faults.scrub_hours").GetString());
        }

        var part = CliProcess.InProcess("fleet", "merge", a, c, "--json", "--partial");
        Assert.Equal(0, part.Exit);
        Assert.Contains("PARTIAL result", part.Err);
        using (var doc = JsonDocument.Parse(part.Out))
        {
            Assert.True(doc.RootElement.GetProperty("study").GetProperty("partial").GetBoolean());
            Assert.Equal("partial: 2 of 3 shards (missing 1/3)", doc.RootElement.GetProperty("context").GetProperty("shard").GetString());
            var (_, bServers) = new FleetShard(1, 3).Range(400);
            Assert.Equal(400 - (bServers - new FleetShard(1, 3).Range(400).First), doc.RootElement.GetProperty("fleet").GetProperty("servers").GetInt64());
        }
        var table = CliProcess.InProcess("fleet", "merge", a, c, "--partial");
        Assert.StartsWith("PARTIAL: partial: 2 of 3 shards (missing 1/3)", table.Out);
        string csv = Path.Combine(Dir, "partial.csv");
        Assert.Equal(0, CliProcess.InProcess("fleet", "merge", a, c, "--partial", "--out", csv).Exit);
        var lines = File.ReadAllLines(csv);
        Assert.EndsWith(",study,shard", lines[0]);
        Assert.All(lines.Skip(1), l => Assert.EndsWith(",\"partial: 2 of 3 shards (missing 1/3)\"", l));
        Assert.EndsWith(",\"all\"", CliProcess.InProcess("fleet", "merge", a, b, c, "--csv").Out.TrimEnd());
    }

    [Fact]
    public void Merge_refuses_duplicates_missing_shards_overlaps_other_seeds_and_configs_differing_in_one_field()
    {
        string a = Shard("r0.json", 0, 2), b = Shard("r1.json", 1, 2);
        string copy = Path.Combine(Dir, "r1-copy.json");
        File.Copy(b, copy);
        string third = Shard("t1.json", 1, 3);
        string seed = Path.Combine(Dir, "seed.json");
        File.WriteAllText(seed, CliProcess.InProcess("fleet", "--servers", "400", "--seed", "8", "--policy", "mainline,hgm", "--json", "--shard", "1/2").Out);
        string yaml = Path.Combine(Dir, "scrub.yaml");
        File.WriteAllText(yaml, "faults:\n  scrub_hours: 48\n");
        string scrub = Shard("scrub.json", 1, 2, yaml);

        var cases = new (string[] Files, string Message)[]
        {
            ([a, b, copy], "r1.json: shard 1/2 is given twice (also "),
            ([a], "missing shard(s) 1/2 of study"),
            ([a, b, third], "t1.json: shard 1/3 of a 3-way split overlaps"),
            ([a, seed], "seed.json: study"),
            ([a, scrub], "scrub.json: study"),
        };
        foreach (var (files, message) in cases)
        {
            var r = CliProcess.InProcess(["fleet", "merge", .. files]);
            Assert.Equal(2, r.Exit);
            Assert.Equal("", r.Out);
            Assert.Contains(message, OneLine(r.Err));
        }
        Assert.Contains("seed (8 vs 7)", CliProcess.InProcess("fleet", "merge", a, seed).Err);
        string scrubErr = CliProcess.InProcess("fleet", "merge", a, scrub).Err;
        Assert.Contains("faults.scrub_hours (48 vs 24)", scrubErr);
        Assert.DoesNotContain("seed (", scrubErr); // only the field that differs is named

        // A stamp edited to pass for another study, and a file whose servers do not match its shard, are caught too.
        string edited = Path.Combine(Dir, "edited.json");
        File.WriteAllText(edited, File.ReadAllText(scrub).Replace("\"faults.scrub_hours\": \"48\"", "\"faults.scrub_hours\": \"24\""));
        Assert.Contains("does not match its recorded fields", OneLine(CliProcess.InProcess("fleet", "merge", a, edited).Err));
        string truncated = Path.Combine(Dir, "servers.json");
        using (var doc = JsonDocument.Parse(File.ReadAllText(b)))
            File.WriteAllText(truncated, File.ReadAllText(b).Replace($"\"servers\": {doc.RootElement.GetProperty("raw").GetProperty("servers").GetInt64()},", "\"servers\": 3,"));
        Assert.Contains("servers.json: holds 3 servers but shard(s) 1/2 of 400 have 200", OneLine(CliProcess.InProcess("fleet", "merge", a, truncated).Err));
    }

    [Fact]
    public void A_shard_whose_raw_tallies_have_the_wrong_shape_or_size_is_refused_in_one_line()
    {
        // Found by the fuzz campaign (seed 9): "bins": -1 ended in an OverflowException (input 3905), and a value deleted
        // from a row of raw.sum was read as 0 until the report's interval came out infinite (input 85983); both exit 70.
        string b = Shard("sizes1.json", 1, 2), text = File.ReadAllText(b);
        var cases = new (Action<System.Text.Json.Nodes.JsonObject> Tamper, string Message)[]
        {
            (r => r["bins"] = -1, "raw.bins must be 1 to 240"),
            (r => r["bins"] = 0, "raw.bins must be 1 to 240"),
            (r => r["bins"] = 2_000_000_000, "raw.bins must be 1 to 240"),
            (r => r["policies"]![0] = "hgm", "raw.policies must list each policy once"),
            (r => r["sum"]![0]!.AsArray().RemoveAt(3), "raw.sum row 0 has 14 values, expected 15"),
            (r => r["series"]!.AsArray().RemoveAt(1), "raw.series has 1 rows, expected 2"),
            (r => r["server_sum"]!.AsArray().Add(0), "raw.server_sum has"),
            (r => r["sum_sq"]![1]![2] = System.Text.Json.Nodes.JsonNode.Parse("1" + new string('0', 45)), "malformed fleet JSON"),
            (r => r["sum_sq"]![1]![2] = -5, "raw.sum_sq holds a negative sum of squares"),
            (r => r["servers_touched"] = -1, "raw.servers_touched is negative"),
        };
        foreach (var (tamper, message) in cases)
        {
            var root = System.Text.Json.Nodes.JsonNode.Parse(text)!.AsObject();
            tamper(root["raw"]!.AsObject());
            string path = Path.Combine(Dir, "sizes-tampered.json");
            File.WriteAllText(path, root.ToJsonString());
            foreach (string[] args in new[] { new[] { "fleet", "merge", path, "--partial", "--json" }, ["fleet", "merge", path, b] })
            {
                var r = CliProcess.InProcess(args);
                Assert.Equal(2, r.Exit);
                Assert.Contains(message, OneLine(r.Err));
            }
        }
    }

    [Fact]
    public void The_environment_chooses_a_shard_only_with_shard_auto_and_a_rerun_task_runs_exactly_its_shard()
    {
        var slurm = new Dictionary<string, string> { ["SLURM_ARRAY_TASK_ID"] = "2", ["SLURM_ARRAY_TASK_MIN"] = "0", ["SLURM_ARRAY_TASK_MAX"] = "3", ["SLURM_ARRAY_TASK_COUNT"] = "4" };
        string[] small = ["fleet", "--servers", "40", "--policy", "mainline", "--json"];
        Assert.Contains("shard all (the whole study (no --shard))", CliProcess.InProcess(slurm, small).Err);
        Assert.Contains("shard 2/4 (--shard auto: SLURM_ARRAY_TASK_ID=2 of the array's 4 tasks)", CliProcess.InProcess(slurm, [.. small, "--shard", "auto"]).Err);

        // sbatch --array=2 of a 4-task study: the array alone does not say 4, so it is refused unless HUGEFAULT_SHARDS says it.
        var rerun = new Dictionary<string, string> { ["SLURM_ARRAY_TASK_ID"] = "2", ["SLURM_ARRAY_TASK_MIN"] = "2", ["SLURM_ARRAY_TASK_MAX"] = "2", ["SLURM_ARRAY_TASK_COUNT"] = "1" };
        var refused = CliProcess.InProcess(rerun, [.. small, "--shard", "auto"]);
        Assert.Equal(2, refused.Exit);
        Assert.Contains("is not the full 0…N-1 array", OneLine(refused.Err));
        var rerunOk = CliProcess.InProcess(new Dictionary<string, string>(rerun) { ["HUGEFAULT_SHARDS"] = "4" }, [.. small, "--shard", "auto"]);
        var direct = CliProcess.InProcess([.. small, "--shard", "2/4"]);
        Assert.Equal(0, rerunOk.Exit);
        Assert.Equal(direct.Out, rerunOk.Out);

        var mismatch = CliProcess.InProcess(new Dictionary<string, string>(slurm) { ["HUGEFAULT_SHARDS"] = "5" }, [.. small, "--shard", "auto"]);
        Assert.Contains("HUGEFAULT_SHARDS=5 but this Slurm array is 0-3", OneLine(mismatch.Err));
        var k8s = CliProcess.InProcess(new Dictionary<string, string> { ["JOB_COMPLETION_INDEX"] = "3" }, [.. small, "--shard", "auto"]);
        Assert.Contains("HUGEFAULT_SHARDS is not", OneLine(k8s.Err));
        Assert.Contains("shard 3/8", CliProcess.InProcess(new Dictionary<string, string> { ["JOB_COMPLETION_INDEX"] = "3", ["HUGEFAULT_SHARDS"] = "8" }, [.. small, "--shard", "auto"]).Err);
        Assert.Contains("neither JOB_COMPLETION_INDEX", OneLine(CliProcess.InProcess([.. small, "--shard", "auto"]).Err));
    }

    [Fact]
    public void Outputs_are_named_by_study_and_shard_checked_before_the_run_and_a_finished_shard_is_not_rerun()
    {
        Directory.CreateDirectory(Dir);
        string pattern = Path.Combine(Dir, "fleet-{study}-{shard}.json");
        string[] run = ["fleet", "--servers", "60", "--policy", "mainline", "--shard", "1/2", "--out", pattern];
        var first = CliProcess.InProcess(run);
        Assert.Equal(0, first.Exit);
        string id = JsonDocument.Parse(File.ReadAllText(Directory.GetFiles(Dir, "fleet-*-1of2.json").Single())).RootElement.GetProperty("study").GetProperty("id").GetString()!;
        string path = Path.Combine(Dir, $"fleet-{id}-1of2.json");
        Assert.True(File.Exists(path));
        var again = CliProcess.InProcess(run);
        Assert.Equal(0, again.Exit);
        Assert.Contains("already holds shard 1/2 of study " + id + "; skipped", again.Err);
        Assert.DoesNotContain("servers × ", again.Err);
        Assert.Contains("servers × ", CliProcess.InProcess([.. run, "--force"]).Err);

        foreach (var bad in new[] { "/proc/hugefault.parquet", "/nonexistent-dir/x.json" })
        {
            var r = CliProcess.InProcess("fleet", "--servers", "10000000000", "--out", bad);
            Assert.Equal(2, r.Exit);
            Assert.StartsWith("hugefault fleet: --out", OneLine(r.Err));
        }
    }

    [Fact]
    public void A_killed_run_leaves_no_output_file()
    {
        Directory.CreateDirectory(Dir);
        string out1 = Path.Combine(Dir, "killed.parquet");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "HugeFault.Cli.dll"), "fleet", "--servers", "1000000000", "--threads", "1", "--out", out1 }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string? line;
        while ((line = p.StandardError.ReadLine()) is not null && !line.Contains("study ", StringComparison.Ordinal)) { }
        Assert.NotNull(line);
        Thread.Sleep(300);
        p.Kill(entireProcessTree: true);
        p.WaitForExit();
        Assert.False(File.Exists(out1));
    }

    [Fact]
    public void The_study_identity_covers_every_config_field_and_names_what_differs()
    {
        var a = StudyIdentity.Of(new FleetConfig(), "t");
        var b = StudyIdentity.Of(new FleetConfig { Guest = new FleetGuestConfig { GuestKernelFraction = 0.5 } }, "t");
        Assert.NotEqual(a.Id, b.Id);
        Assert.Equal(["guest.guest_kernel_fraction (" + new FleetGuestConfig().GuestKernelFraction.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + " vs 0.5)"], a.Differences(b));
        Assert.NotEqual(a.Id, StudyIdentity.Of(new FleetConfig(), "u").Id);
        Assert.Equal(a.Id, StudyIdentity.Of(new FleetConfig(), "t").Id);
        foreach (var key in new[] { "seed", "servers", "years", "policies", "tool_version", "faults.repair_delay_hours", "workload.vm_sizes", "server.address_order" })
            Assert.NotNull(a[key]);
    }
}

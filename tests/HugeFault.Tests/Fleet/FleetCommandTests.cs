using System.CommandLine;
using System.Text.Json;
using HugeFault.Cli.Commands;
using HugeFault.Fleet;

namespace HugeFault.Tests.Fleet;

public class FleetCommandTests
{
    // through Program.Run, the entry point (a root built here would re-attach the command's static options each call)
    internal static (int Exit, string Out, string Err) Invoke(params string[] args) => HugeFault.Tests.Cli.CliProcess.InProcess(args);

    private static string Temp(string name, string text)
    {
        string dir = Path.Combine(Path.GetTempPath(), "hugefault-fleet-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void A_config_with_several_mistakes_reports_each_one_with_file_line_and_column()
    {
        const string yaml = """
            server:
              sockets: 3
              chip_width: 16
              ecc: parity
            faults:
              profile: ddr4
              fit_scale: -1
              scrubhours: 24
            workload:
              pool_occupancy: 1.5
            run:
              policies: [mainline, hgm-4k]
            """;
        var (config, errors) = FleetConfigLoader.Load(yaml, "bad.yaml");
        Assert.Null(config);
        // Syntax-level problems first (unknown key, bad enum); range checks need a parsable file.
        Assert.Contains(errors, e => e.StartsWith("bad.yaml:4:8: server.ecc must be none, secded, chipkill or adddc", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("bad.yaml:8:3: unknown key 'faults.scrubhours'; did you mean 'faults.scrub_hours'?", StringComparison.Ordinal));
        Assert.All(errors, e => Assert.Matches(@"^bad\.yaml:\d+:\d+: ", e));

        var (_, rangeErrors) = FleetConfigLoader.Load(yaml.Replace("  ecc: parity\n", "").Replace("  scrubhours: 24\n", ""), "bad.yaml");
        Assert.Contains(rangeErrors, e => e.StartsWith("bad.yaml:2:3: server.sockets must be a power of two", StringComparison.Ordinal));
        Assert.Contains(rangeErrors, e => e.StartsWith("bad.yaml:3:3: server.chip_width must be 4 or 8", StringComparison.Ordinal));
        Assert.Contains(rangeErrors, e => e.StartsWith("bad.yaml:6:3: faults.fit_scale must be in (0, 100]", StringComparison.Ordinal));
        Assert.Contains(rangeErrors, e => e.StartsWith("bad.yaml:8:3: workload.pool_occupancy must be in (0, 1]", StringComparison.Ordinal));
        Assert.Contains(rangeErrors, e => e.StartsWith("bad.yaml:10:3: run.policies unknown policy 'hgm-4k'", StringComparison.Ordinal));
    }

    [Fact]
    public void A_bad_config_file_exits_2_with_one_line_per_problem_on_stderr()
    {
        string path = Temp("fleet.yaml", "server:\n  banks: 12\nrun:\n  years: 0\n");
        var (exit, output, err) = Invoke("fleet", path);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith($"{path}:2:3: server.banks must be a power of two", lines[0]);
        Assert.StartsWith($"{path}:4:3: run.years must be in (0, 20]", lines[1]);
    }

    [Fact]
    public void A_yaml_syntax_error_is_one_line_with_its_position()
    {
        string path = Temp("broken.yaml", "server:\n  banks: [16\n");
        var (exit, _, err) = Invoke("fleet", path);
        Assert.Equal(2, exit);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Matches(@"broken\.yaml:\d+:\d+: YAML syntax error", err);
    }

    [Theory]
    [InlineData("--servers", "many", "--servers must be a whole number")]
    [InlineData("--policy", "mainline,hgm4k", "--policy: unknown policy 'hgm4k'")]
    [InlineData("--shard", "3/3", "--shard must be K/N with 0 ≤ K < N, or auto")]
    [InlineData("--years", "0", "--years must be in (0, 20]")]
    public void Bad_flags_are_one_line_on_stderr_and_exit_2(string flag, string value, string message)
    {
        string[] args = flag == "--servers" ? ["fleet", flag, value] : ["fleet", flag, value, "--servers", "10"];
        var (exit, output, err) = Invoke(args);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(message, err);
    }

    [Fact]
    public void Json_is_byte_identical_across_thread_counts_and_shards_merge_back_to_the_same_json()
    {
        string[] common = ["fleet", "--servers", "700", "--seed", "5", "--json"];
        string yaml = Temp("busy.yaml", "faults:\n  fit_scale: 8\n");
        var one = Invoke([.. common, yaml, "--threads", "1"]);
        var two = Invoke([.. common, yaml, "--threads", "2"]);
        Assert.Equal(0, one.Exit);
        Assert.Equal(one.Out, two.Out);
        using (var doc = JsonDocument.Parse(one.Out))
            Assert.True(doc.RootElement.GetProperty("policies").GetProperty("mainline").GetProperty("ue_events").GetProperty("mean").GetDouble() > 0);

        var files = new List<string>();
        for (int k = 0; k < 3; k++)
        {
            var part = Invoke([.. common, yaml, "--shard", $"{k}/3"]);
            Assert.Equal(0, part.Exit);
            files.Add(Temp($"shard{k}.json", part.Out));
        }
        var merged = Invoke(["fleet", "merge", .. files, "--json"]);
        Assert.Equal(0, merged.Exit);
        Assert.Equal(one.Out, merged.Out);
    }

    [Fact]
    public void Merging_shards_of_different_runs_or_non_fleet_files_is_refused_with_one_line_each()
    {
        var a = Invoke("fleet", "--servers", "300", "--seed", "1", "--shard", "0/2", "--json", "--policy", "mainline");
        var b = Invoke("fleet", "--servers", "300", "--seed", "2", "--shard", "1/2", "--json", "--policy", "mainline");
        string fa = Temp("a.json", a.Out), fb = Temp("b.json", b.Out), junk = Temp("junk.json", "{\"hello\": 1}");
        var mixed = Invoke("fleet", "merge", fa, fb);
        Assert.Equal(2, mixed.Exit);
        Assert.Contains("seed (2 vs 1)", mixed.Err);
        var bad = Invoke("fleet", "merge", fa, junk, "/nonexistent/x.json");
        Assert.Equal(2, bad.Exit);
        var lines = bad.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains("not a 'hugefault fleet --json' output", lines[0]);
        Assert.Contains("file not found", lines[1]);
    }

    [Fact]
    public void Table_csv_plots_and_parquet_are_written()
    {
        string dir = Path.GetDirectoryName(Temp("x", ""))!;
        string parquet = Path.Combine(dir, "servers.parquet");
        string yaml = Temp("busy.yaml", "faults:\n  fit_scale: 8\n");
        var table = Invoke("fleet", yaml, "--servers", "600", "--policy", "mainline,hgm", "--plot", Path.Combine(dir, "plots"), "--out", parquet);
        Assert.Equal(0, table.Exit);
        Assert.Contains("stranded capacity", table.Out);
        Assert.Contains("VM crashes", table.Out);
        foreach (var name in new[] { "stranded-over-time", "vm-crashes", "ue-footprint-by-mode" })
        {
            Assert.True(new FileInfo(Path.Combine(dir, "plots", name + ".png")).Length > 1000);
            Assert.True(new FileInfo(Path.Combine(dir, "plots", name + ".svg")).Length > 1000);
        }
        Assert.True(new FileInfo(parquet).Length > 100);
        var csv = Invoke("fleet", yaml, "--servers", "600", "--policy", "mainline,hgm", "--csv");
        Assert.StartsWith("policy,metric,unit,mean,ci_lo,ci_hi,total,diff_vs_mainline,diff_lo,diff_hi", csv.Out);
        Assert.Contains("\nhgm,vm_crashes,", csv.Out);
    }
}

public class FleetConfigKeysTests
{
    [Fact]
    public void Keys_that_no_longer_mean_anything_are_refused_with_what_replaced_them()
    {
        const string yaml = """
            guest:
              mainline_kill_on_consumed: 0.9
              mainline_kill_on_scrubbed: 0.6
              repair_fallback: hgm
              copy_around_fallback: mainline
            """;
        var (config, errors) = FleetConfigLoader.Load(yaml, "old.yaml");
        Assert.Null(config);
        Assert.Equal(4, errors.Count);
        Assert.StartsWith("old.yaml:2:3: guest.mainline_kill_on_consumed was removed: a VM's death now comes from the VM model", errors[0]);
        Assert.StartsWith("old.yaml:3:3: guest.mainline_kill_on_scrubbed was removed", errors[1]);
        Assert.Equal("old.yaml:4:3: guest.repair_fallback was replaced by policy_params.repair.fallback (a policy's parameters go to its kernel model as they are)", errors[2]);
        Assert.StartsWith("old.yaml:5:3: guest.copy_around_fallback was replaced by policy_params.copy-around.fallback", errors[3]);
    }

    [Fact]
    public void Policy_parameters_reach_the_kernel_model_and_bad_ones_are_refused_with_their_key()
    {
        var (config, errors) = FleetConfigLoader.Load("policy_params:\n  repair: {fallback: hgm}\nguest: {max_mces: 8, mce_window_s: 30}\n", "p.yaml");
        Assert.Empty(errors);
        Assert.Equal("hgm", config!.ParametersOf("repair")["fallback"]);
        Assert.Equal(((int?)8, 30.0), (config.Guest.MaxMces, config.Guest.MceWindowSeconds));
        Assert.Equal("hgm", new FleetModel(config).Tables[Array.IndexOf(config.Policies.ToArray(), "repair")].Parameters["fallback"]);

        var (_, bad) = FleetConfigLoader.Load("policy_params:\n  repair: {fallback: repair}\n  nosuch: {x: 1}\n  hgm: {enlightened: true}\n  copy-around: 3\n", "p.yaml");
        Assert.Contains(bad, e => e.StartsWith("p.yaml:5:16: policy_params.copy-around must map parameter names to values", StringComparison.Ordinal));
        var (_, bad2) = FleetConfigLoader.Load("policy_params:\n  repair: {fallback: repair}\n  nosuch: {x: 1}\n  hgm: {enlightened: true}\n", "p.yaml");
        Assert.Contains(bad2, e => e.StartsWith("p.yaml:2:3: policy_params.repair repair cannot fall back to itself", StringComparison.Ordinal));
        Assert.Contains(bad2, e => e.StartsWith("p.yaml:3:3: policy_params.nosuch unknown policy 'nosuch'", StringComparison.Ordinal));
        Assert.Contains(bad2, e => e.StartsWith("p.yaml:4:3: policy_params.hgm.enlightened is set per guest by the fleet", StringComparison.Ordinal));
    }

    [Fact]
    public void The_guest_defaults_are_the_vm_models()
    {
        var vm = new HugeFault.Virt.GuestConfig();
        var g = new FleetGuestConfig();
        Assert.Equal((vm.KernelFraction, vm.MaxMces, vm.MceWindowNs / 1e9), (g.GuestKernelFraction, g.MaxMces, g.MceWindowSeconds));
        Assert.Null(g.MaxMces); // Linux has no machine-check budget (Virt.GuestConfig.MaxMces)
    }
}

public class FleetDocsTests
{
    [Fact]
    public void The_yaml_in_docs_fleet_md_parses_and_states_exactly_the_built_in_defaults()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "docs", "fleet.md"))) dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        string md = File.ReadAllText(Path.Combine(dir, "docs", "fleet.md"));
        int start = md.IndexOf("```yaml\n", StringComparison.Ordinal) + "```yaml\n".Length;
        string yaml = md[start..md.IndexOf("```", start, StringComparison.Ordinal)];
        var (config, errors) = FleetConfigLoader.Load(yaml, "docs/fleet.md");
        Assert.Empty(errors);
        var d = new FleetConfig();
        Assert.NotNull(config);
        Assert.Equal(d.Server with { AddressOrder = [] }, config.Server with { AddressOrder = [] });
        Assert.Equal(d.Server.AddressOrder, config.Server.AddressOrder);
        Assert.Equal(d.Faults, config.Faults);
        Assert.Equal(d.Workload with { VmSizes = [] }, config.Workload with { VmSizes = [] });
        Assert.Equal(d.Workload.VmSizes, config.Workload.VmSizes);
        Assert.Equal(d.Guest, config.Guest);
        Assert.Equal((d.Servers, d.Years, d.Seed), (config.Servers, config.Years, config.Seed));
        Assert.Equal(d.Policies, config.Policies);
    }
}

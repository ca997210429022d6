using System.Text;
using HugeFault.Policies;

namespace HugeFault.Tests.Cli;

/// <summary>
/// `hugefault compare` and the command-line conventions. Most run the command in-process on two small scenarios and a
/// tiny fleet (the figures do not matter here, only what the command prints); a few start the real binary for what
/// only the process boundary shows.
/// </summary>
public class CompareCommandTests
{
    private static readonly string[] SmallCompare = ["compare", "builtin:policies/shared-1g", "builtin:policies/keep-mapped", "--fleet-servers", "300", "--sensitivity-servers", "40"];
    private static readonly Lazy<(int Exit, string Out, string Err)> Plain = new(() => CliProcess.InProcess(SmallCompare));

    [Fact]
    public void At_80_columns_no_line_is_longer_than_80_bytes_and_none_ends_in_a_blank()
    {
        // the real binary, with COLUMNS set as a shell sets it
        var (exit, stdout, _) = CliProcess.Run(new Dictionary<string, string> { ["COLUMNS"] = "80" }, SmallCompare);
        Assert.Equal(0, exit);
        var lines = stdout.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("Details:", StringComparison.Ordinal));
        Assert.All(lines, l => Assert.True(Encoding.UTF8.GetByteCount(l) <= 80, $"{Encoding.UTF8.GetByteCount(l)} bytes: {l}"));
        Assert.All(lines, l => Assert.False(l.EndsWith(' '), $"trailing blank: '{l}'"));
        Assert.All(lines, l => Assert.True(l.All(c => c < 128), $"not ASCII: {l}"));
    }

    [Fact]
    public void The_summary_and_verdict_come_first_and_other_policies_are_not_judged_by_a_scenario()
    {
        var (exit, stdout, stderr) = Plain.Value;
        Assert.Equal(0, exit);
        var lines = stdout.Split('\n');
        int policies = RecoveryPolicies.Names.Count;
        Assert.StartsWith($"HugeFault: {policies} recovery policies on 2 scenarios", lines[0]);
        Assert.InRange(Array.FindIndex(lines, l => l.StartsWith("Summary:", StringComparison.Ordinal)), 1, 4);
        int verdict = Array.IndexOf(lines, "Verdict"), details = Array.FindIndex(lines, l => l.StartsWith("Details:", StringComparison.Ordinal));
        Assert.True(verdict > 0 && verdict < details && details < Array.FindIndex(lines, l => l.StartsWith("Scenarios", StringComparison.Ordinal)));
        Assert.DoesNotContain(" fail ", stdout); // both scenarios hold under the policy they were written for
        Assert.Contains($"hugefault compare: 2 scenarios × {policies} policies", stderr);
        Assert.Contains($"sensitivity {2 * HugeFault.Reports.Sensitivity.Parameters.Count + 1} runs × 40 servers", stderr);
        Assert.True(lines.Max(l => l.Length) <= 120);
    }

    [Fact]
    public void A_subset_of_policies_gets_a_verdict_about_those_policies_only()
    {
        string[] subset = ["mainline", "hgm-v2", "keep-mapped"];
        var (exit, stdout, _) = CliProcess.InProcess("compare", "builtin:vm/vm-4g-one-error", "--policy", string.Join(",", subset), "--fleet-servers", "300", "--sensitivity-servers", "0");
        Assert.Equal(0, exit);
        Assert.StartsWith("HugeFault: 3 recovery policies on 1 scenario", stdout);
        string verdict = stdout[stdout.IndexOf("\nVerdict\n", StringComparison.Ordinal)..stdout.IndexOf("\nDetails:", StringComparison.Ordinal)];
        Assert.Contains("keep-mapped", verdict);
        foreach (var other in RecoveryPolicies.Names.Except(subset)) Assert.DoesNotContain(other, verdict.Replace("hgm-v2", ""));
        if (!HugeFault.Fleet.FleetPolicies.TryParse("hgm-v2", out _)) Assert.Contains("hgm-v2: no fleet figures (the fleet does not model it yet)", verdict);
    }

    [Fact]
    public void Wide_prints_tables_unsplit()
    {
        var (exit, stdout, _) = CliProcess.InProcess(new Dictionary<string, string> { ["COLUMNS"] = "80" }, "compare", "builtin:policies/keep-mapped", "--wide");
        Assert.Equal(0, exit);
        Assert.Contains(stdout.Split('\n'), l => l.Length > 150);
    }

    [Theory]
    [InlineData("compare --nosuch", "hugefault compare: unknown option '--nosuch'")]
    [InlineData("fleet --servers 10 --bogus", "hugefault fleet: unknown option '--bogus'")]
    [InlineData("compare --json --csv builtin:policies/keep-mapped", "--json and --csv: choose one output format")]
    [InlineData("fleet --json --csv --servers 10", "--json and --csv: choose one output format")]
    [InlineData("compare --out report.pdf builtin:policies/keep-mapped", "unknown format '.pdf'")]
    [InlineData("fleet --servers 10 --out rows.xlsx", "unknown format '.xlsx'")]
    [InlineData("compare --html /nonexistent-dir/r.html", "folder '/nonexistent-dir' does not exist")]
    [InlineData("fleet --servers 10 --plot /proc/version", "is a file; give a folder")]
    [InlineData("compare --policy mainline,hgm4k", "unknown policy 'hgm4k'")]
    [InlineData("run --policy nosuch builtin:policies/keep-mapped", "unknown policy 'nosuch'")]
    [InlineData("nosuchcommand", "hugefault: unexpected argument 'nosuchcommand'")]
    public void Usage_errors_exit_2_with_one_line_naming_hugefault_before_any_work(string args, string message) =>
        OneUsageLine(CliProcess.InProcess(args.Split(' ')), message);

    [Fact]
    public void Usage_errors_come_through_the_real_binary_as_exit_2_and_one_stderr_line() =>
        OneUsageLine(CliProcess.Run("compare", "--nosuch"), "hugefault compare: unknown option '--nosuch'");

    private static void OneUsageLine((int Exit, string Out, string Err) r, string message)
    {
        Assert.Equal(2, r.Exit);
        Assert.Equal("", r.Out);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(message, lines[0]);
        Assert.StartsWith("hugefault", lines[0]);
        Assert.DoesNotContain("HugeFault.Cli", r.Err);
    }

    [Fact]
    public void Help_names_the_tool_hugefault()
    {
        var (exit, stdout, _) = CliProcess.InProcess("compare", "--help");
        Assert.Equal(0, exit);
        Assert.Contains("hugefault compare [<scenario>...] [options]", stdout);
    }

    [Fact]
    public void Csv_includes_the_fleet_and_json_has_the_verdict()
    {
        string[] tiny = ["compare", "builtin:policies/keep-mapped", "--policy", "mainline,hgm", "--fleet-servers", "200", "--sensitivity-servers", "0"];
        var (exit, csv, _) = CliProcess.InProcess([.. tiny, "--csv"]);
        Assert.Equal(0, exit);
        Assert.StartsWith("section,scenario,policy,metric,unit,value,ci_lo,ci_hi,diff_vs_mainline,diff_lo,diff_hi", csv);
        Assert.Contains("\nfleet,,hgm,vm_crashes,", csv);
        Assert.Contains("\nscenario,", csv);
        var (_, json, _) = CliProcess.InProcess([.. tiny, "--json"]);
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        Assert.True(doc.RootElement.GetProperty("verdict").GetArrayLength() > 3);
        Assert.True(doc.RootElement.TryGetProperty("fleet", out _));
    }

    [Fact]
    public void Out_writes_the_format_of_its_extension()
    {
        string dir = Directory.CreateTempSubdirectory("hugefault-out-").FullName;
        foreach (var ext in new[] { "json", "csv", "txt", "html" })
        {
            string f = Path.Combine(dir, "r." + ext);
            var (exit, _, _) = CliProcess.InProcess("compare", "builtin:policies/keep-mapped", "--policy", "mainline,keep-mapped", "--out", f);
            Assert.Equal(0, exit);
            string text = File.ReadAllText(f);
            Assert.True(ext switch { "json" => text.StartsWith('{'), "csv" => text.StartsWith("section,"), "html" => text.StartsWith("<!DOCTYPE html>"), _ => text.StartsWith("HugeFault:") }, ext);
        }
        Assert.Empty(Directory.GetFiles(dir, "*.tmp")); // written through a temp file and renamed
    }

    [Fact]
    public void List_prints_builtin_scenarios_and_policies_with_their_parameters()
    {
        var (exit, stdout, _) = CliProcess.InProcess(new Dictionary<string, string> { ["COLUMNS"] = "100" }, "list");
        Assert.Equal(0, exit);
        Assert.Contains("builtin:policies/shared-1g-error-in-middle.yaml", stdout);
        Assert.Contains("builtin:conformance/mainline/", stdout);
        Assert.Contains("bad_line=fake-poison", stdout);
        Assert.Contains("fallback=mainline", stdout);
        Assert.Contains("report=native", stdout);
        foreach (var p in RecoveryPolicies.Names) Assert.Contains(p, stdout);
    }

    [Fact]
    public void Run_summary_json_prints_only_the_summary_lines()
    {
        var (exit, stdout, _) = CliProcess.InProcess("run", "--summary", "--json", "builtin:policies/keep-mapped", "builtin:policies/vma-convert");
        Assert.Equal(0, exit);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.All(lines, l => Assert.Contains("\"kind\":\"summary\"", l));
    }
}

/// <summary>The scenario runs, the fleet and the sensitivity re-runs run at once: the report does not depend on the thread count.</summary>
public class CompareThreadsTests
{
    [Fact]
    public void Compare_json_with_the_fleet_and_sensitivity_is_byte_identical_on_1_and_3_threads()
    {
        string[] args = ["compare", "builtin:policies/shared-1g", "builtin:vm/vm-4g-one-error", "--fleet-servers", "400", "--sensitivity-servers", "60", "--json", "--threads"];
        var one = CliProcess.InProcess([.. args, "1"]);
        var three = CliProcess.InProcess([.. args, "3"]);
        Assert.Equal(0, one.Exit);
        Assert.Contains("\"sensitivity\"", one.Out);
        Assert.Contains("\"fleet\"", one.Out);
        Assert.Equal(one.Out, three.Out);
    }
}

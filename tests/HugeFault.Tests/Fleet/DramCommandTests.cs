using System.CommandLine;
using System.Text.Json;
using System.Text.RegularExpressions;
using HugeFault.Cli.Commands;

namespace HugeFault.Tests.Fleet;

public class DramCommandTests
{
    private const string ExactCommand =
        "dram --chips 18 --width 4 --ranks 1 --banks 8 --rows 16384 --columns 2048 --years 7 --scrub-hours 3 --fit jaguar --ecc chipkill --trials 1000000 --seed 7";

    // through Program.Run, the entry point (no argument here holds a space)
    private static (int Exit, string Out, string Err) Invoke(string args) =>
        HugeFault.Tests.Cli.CliProcess.InProcess(args.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    [Fact]
    public void The_exact_command_from_the_brief_prints_a_table_with_the_three_probabilities()
    {
        var (exit, output, err) = Invoke(ExactCommand.Replace("--trials 1000000", "--trials 200000"));
        Assert.Equal(0, exit);
        Assert.Equal("", err);
        Assert.Contains("P(at least one fault)", output);
        Assert.Contains("P(uncorrectable error)", output);
        Assert.Contains("P(undetected error)", output);
        Assert.Contains("Trials per second", output);
    }

    [Theory]
    [InlineData("chipkill", "jaguar")]
    [InlineData("secded", "ddr4")]
    [InlineData("none", "jaguar")]
    [InlineData("adddc", "ddr4")]
    public void Json_output_is_exactly_one_object_with_the_documented_fields(string ecc, string fit)
    {
        var (exit, output, _) = Invoke($"dram --ecc {ecc} --fit {fit} --fit-scale 2 --trials 50000 --seed 3 --json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        foreach (var field in new[] { "p_fault", "p_uncorrectable", "p_undetected", "fit_uncorrectable", "trials_per_second" })
            Assert.Equal(JsonValueKind.Number, root.GetProperty(field).ValueKind);
        Assert.Equal(ecc, root.GetProperty("config").GetProperty("ecc").GetString());
        Assert.True(root.GetProperty("p_uncorrectable").GetDouble() <= root.GetProperty("p_fault").GetDouble());
    }

    [Fact]
    public void Json_output_is_byte_identical_across_thread_counts_except_the_timing()
    {
        string Strip(string json) => Regex.Replace(json, "\"trials_per_second\": [0-9.eE+-]+", "\"trials_per_second\": T");
        var one = Invoke(ExactCommand.Replace("--trials 1000000", "--trials 300000") + " --json --threads 1");
        var two = Invoke(ExactCommand.Replace("--trials 1000000", "--trials 300000") + " --json --threads 2");
        Assert.Equal(0, one.Exit);
        Assert.Equal(Strip(one.Out), Strip(two.Out));
    }

    [Theory]
    [InlineData("--width 5", "--width")]
    [InlineData("--ecc foo", "--ecc")]
    [InlineData("--trials 0", "--trials")]
    [InlineData("--years -1", "--years")]
    [InlineData("--fit ddr9", "--fit")]
    [InlineData("--rows 1000", "--rows")]
    [InlineData("--scrub-hours 0", "--scrub-hours")]
    [InlineData("--threads 0", "--threads")]
    [InlineData("--fit-scale abc", "--fit-scale")]
    [InlineData("--weakened-ecc 1.5", "--weakened-ecc")]
    [InlineData("--seed -1", "--seed")]
    [InlineData("--bogus 3", "--bogus")]
    [InlineData("--chips", "--chips")]
    public void A_bad_flag_gives_exit_code_2_and_one_line_naming_the_flag(string args, string flag)
    {
        var (exit, output, err) = Invoke($"dram {args}");
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(flag, lines[0]);
        Assert.DoesNotContain("   at ", err); // no stack trace
    }
}

using HugeFault.Mm;
using HugeFault.Scenarios;
using HugeFault.Tests.Cli;

namespace HugeFault.Tests.Scenarios;

/// <summary>
/// Issue 12: every value the model cannot honour is rejected when the file is loaded (file:line:column, exit 2), so
/// the runner never meets it; each case here once reached the runner and crashed or ran away.
/// </summary>
public class HostileInputTests
{
    private const string File = "h.yaml";

    private static string Doc(string host, params string[] steps) => string.Join("\n", [
        "name: hostile input",
        host,
        "processes: [A]",
        "steps:",
        .. steps,
    ]) + "\n";

    private const string Host = "host: {memory: 8G, hugepages: {1G: 2, 2M: 8}}";

    private static ScenarioError One(string text, string part)
    {
        var (sc, errors) = ScenarioParser.Parse(File, text);
        Assert.Null(sc);
        var e = Assert.Single(errors);
        Assert.Contains(part, e.Message);
        Assert.False(string.IsNullOrWhiteSpace(e.Hint));
        return e;
    }

    [Theory]
    [InlineData("1G-2G")]           // wrapped to ~2^64 and the model tried to map it
    [InlineData("8388607T+1T")]   // 2^63: a sum beyond loff_t
    [InlineData("0x8000000000000000")] // 2^63: beyond loff_t
    [InlineData("4K+")]
    public void A_size_below_zero_or_beyond_2_63_is_an_error_at_its_position(string length)
    {
        var text = Doc(Host, $"  - mmap: {{as: A, length: {length}, flags: [MAP_PRIVATE, MAP_ANONYMOUS], name: a}}");
        var e = One(text, "is not a size");
        Assert.Equal(new SourcePos(File, 5, text.Split('\n')[4].IndexOf(length, StringComparison.Ordinal) + 1), e.Pos);
        Assert.False(ScenarioParser.TryParseSize(length, out _));
    }

    [Fact]
    public void Sizes_that_dip_below_zero_on_the_way_but_end_in_range_are_sizes()
    {
        Assert.True(ScenarioParser.TryParseSize("1G-2G+2G", out var v));
        Assert.Equal(Units.GiB, v);
        Assert.True(ScenarioParser.TryParseSize("0x7fffffffffffffff", out v));
        Assert.Equal((ulong)long.MaxValue, v);
    }

    [Theory]
    [InlineData("vcpu: 99999999999")]   // beyond 32 bits: int.Parse threw FormatException in the runner (exit 70)
    [InlineData("vcpu: 1a")]            // found by ScenarioFuzzTests at 100x (seed 0g_7ENolYpMl)
    [InlineData("vcpu: -1")]
    public void A_vcpu_that_is_not_a_small_whole_number_is_an_error(string arg)
    {
        One(Doc(Host, "  - vm_create: {name: v, ram: 1G, vcpus: 2}", $"  - guest_access: {{vm: v, gpa: 0, {arg}}}"), "'vcpu' must be a whole number");
    }

    [Fact]
    public void A_vcpu_the_vm_does_not_have_is_an_error_naming_the_range()
    {
        var e = One(Doc(Host, "  - vm_create: {name: v, ram: 1G, vcpus: 2}", "  - guest_touch: {vm: v, gpa: 0, length: 1G, pages: 4, vcpu: 2}"), "vcpu 2 of vm 'v', which has 2 vCPU(s)");
        Assert.Contains("0..1", e.Hint);
    }

    [Theory]
    [InlineData("{fallback: nosuch}", "fallback 'nosuch' is not a policy")]
    [InlineData("{report: sideways}", "report 'sideways' is not valid")]
    [InlineData("{fallback: copy-around}", "repair → copy-around → copy-around")] // failed at run time: "copy-around cannot fall back to itself"
    [InlineData("{fallback: repair}", "repair → repair")]
    [InlineData("{auto: maybe}", "auto 'maybe' is not valid")]
    [InlineData("{bad_lines: zero}", "policy repair has no parameter 'bad_lines'")]
    public void Policy_params_are_checked_against_the_policys_own_description(string pp, string part)
    {
        One(Doc($"host: {{memory: 8G, hugepages: {{1G: 2}}, policy: repair, policy_params: {pp}}}", "  - check:"), part);
    }

    [Fact]
    public void A_fallback_policys_own_parameters_are_accepted_and_checked()
    {
        var ok = Doc("host: {memory: 8G, hugepages: {1G: 2}, policy: repair, policy_params: {fallback: userspace-migrate, bandwidth_gbps: 20}}", "  - check:");
        Assert.Empty(ScenarioParser.Parse(File, ok).Errors);
        One(Doc("host: {memory: 8G, hugepages: {1G: 2}, policy: repair, policy_params: {fallback: userspace-migrate, bandwidth_gbps: -3}}", "  - check:"),
            "bandwidth_gbps '-3' is not valid");
    }

    [Fact]
    public void A_file_with_hundreds_of_errors_reports_the_first_fifty_and_a_count()
    {
        var steps = Enumerable.Range(0, 300).Select(i => $"  - mmap: {{as: A, length: {i}X, name: m{i}}}").ToArray();
        var (sc, errors) = ScenarioParser.Parse(File, Doc(Host, steps));
        Assert.Null(sc);
        Assert.Equal(ScenarioParser.MaxErrors + 1, errors.Count);
        Assert.Contains("250 more error(s)", errors[^1].Message);
    }

    [Fact]
    public void Each_operation_becomes_its_typed_record_at_load_time()
    {
        var (sc, errors) = ScenarioParser.Parse(File, Doc(Host,
            "  - mmap: {as: A, length: 1G-4K, flags: [MAP_PRIVATE, MAP_ANONYMOUS], name: a}",
            "  - store: {as: A, map: a, offset: 4K, length: 8, pattern: p2@16}",
            "  - vm_create: {name: v, ram: 2G, vcpus: 3, kernel_fraction: 0.5, qemu: \"9.2\", populate: none}"));
        Assert.Empty(errors);
        var mmap = Assert.IsType<MmapOp>(sc!.Steps[0].Call);
        Assert.Equal(Units.GiB - 4096, mmap.Length.Value);
        Assert.Equal("1G-4K", mmap.Length.Text);
        Assert.Equal(Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS, (int)mmap.Flags.Bits);
        var store = Assert.IsType<StoreOp>(sc.Steps[1].Call);
        Assert.Equal(new MapRange("a", new SizeArg(4096, "4K"), new SizeArg(8, "8")), store.At);
        Assert.Equal(new Pattern("p2", 16), store.Pattern);
        var vm = Assert.IsType<VmCreateOp>(sc.Steps[2].Call);
        Assert.Equal((3, 0.5, new Version(9, 2), (Pattern?)null), (vm.Vcpus, vm.Guest.KernelFraction, vm.Qemu, vm.Populate));
    }

    [Theory]
    [InlineData("  - vm_create: {name: v, ram: 1G, qemu: ten}", "is not a QEMU version")]
    [InlineData("  - vm_create: {name: v, ram: 3M, page_size: 2M}", "not a positive multiple of the page size")]
    [InlineData("  - vm_create: {name: v, ram: 1G, populate: \"p 1\"}", "pattern 'p 1' is not valid")]
    [InlineData("  - nr_hugepages: {size: 2M, value: -1}", "is outside 0..")]
    [InlineData("  - memfd_create: {as: A, name: f, fd: f}\n  - read_loop: {as: A, fd: f, chunk: 0}", "chunk must be at least 1 byte")]
    [InlineData("  - vm_create: {name: v, ram: 1G}\n  - migrate: {vm: v, bandwidth_gbps: 1e300}", "must be a positive number")]
    public void Values_the_model_cannot_honour_are_errors(string steps, string part) => One(Doc(Host, steps.Split('\n')), part);

    [Fact]
    public void The_cli_exits_2_with_one_line_per_problem_for_an_unknown_fallback()
    {
        var path = Path.Combine(Path.GetTempPath(), $"hf-hostile-{Environment.ProcessId}.yaml");
        System.IO.File.WriteAllText(path, Doc("host: {memory: 8G, hugepages: {1G: 2}, policy: repair, policy_params: {fallback: nosuch, report: x}}", "  - check:"));
        try
        {
            var (exit, _, err) = CliProcess.InProcess("run", path);
            Assert.Equal(2, exit);
            Assert.Contains($"{path}:2:", err);
            Assert.Contains("fallback 'nosuch' is not a policy", err);
            Assert.Contains("report 'x' is not valid", err);
            Assert.DoesNotContain("   at ", err);
        }
        finally { System.IO.File.Delete(path); }
    }

    [Theory]
    [InlineData("200T", "[MAP_PRIVATE, MAP_ANONYMOUS]")]                   // beyond TASK_SIZE (2^47): __get_unmapped_area()
    [InlineData("0x7fffffffffffffff", "[MAP_SHARED, MAP_ANONYMOUS]")]
    [InlineData("127T", "[MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE]")]   // below TASK_SIZE but no gap that long under the mmap base
    [InlineData("64T", "[MAP_SHARED, MAP_ANONYMOUS, MAP_HUGETLB, MAP_HUGE_2MB]")] // hugetlb_reserve_pages() cannot reserve 32 M pages
    [InlineData("64T", "[MAP_PRIVATE, MAP_ANONYMOUS, MAP_HUGETLB, MAP_HUGE_1GB]")]
    public void An_mmap_the_address_space_or_the_pool_cannot_hold_fails_with_ENOMEM_quickly(string length, string flags)
    {
        var (sc, errors) = ScenarioParser.Parse(File, Doc(Host,
            $"  - mmap: {{as: A, length: {length}, flags: {flags}, name: a}}",
            "    expect: {ret: -1, errno: ENOMEM}",
            "  - store: {as: A, map: a, offset: 0, length: 8}",
            "    expect: {errno: EFAULT}"));
        Assert.Empty(errors);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var run = ScenarioRunner.Run(sc!);
        Assert.True(run.Passed, string.Join("\n", run.Failures));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}"); // the fuzz harness's bound; it took out-of-memory before
    }

    [Fact]
    public void A_mapping_just_below_the_limits_still_works()
    {
        var (sc, _) = ScenarioParser.Parse(File, Doc(Host,
            "  - mmap: {as: A, length: 64T, flags: [MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE], name: a}",
            "    expect: {errno: [none]}",
            "  - store: {as: A, map: a, offset: 64T-4K, length: 8}",
            "    expect: {outcome: ok}"));
        var run = ScenarioRunner.Run(sc!);
        Assert.True(run.Passed, string.Join("\n", run.Failures));
    }
}

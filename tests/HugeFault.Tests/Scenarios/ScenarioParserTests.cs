using HugeFault.Scenarios;

namespace HugeFault.Tests.Scenarios;

/// <summary>
/// Bad scenario files give errors that say where (file:line:column) and how to fix it (a hint), all at once,
/// and never an exception.
/// </summary>
public class ScenarioParserTests
{
    private const string File = "t.yaml";

    /// <summary>A valid scenario whose steps are replaced by <paramref name="steps"/> (each a line under "steps:", which is line 5).</summary>
    private static string[] With(params string[] steps) =>
    [
        "name: parser test",
        "host: {memory: 8G, hugepages: {1G: 2, 2M: 8}}",
        "processes: [A]",
        "steps:",
        "  - memfd_create: {as: A, name: g, flags: [MFD_HUGETLB, MFD_HUGE_1GB], fd: g}",
        .. steps,
    ];

    private static IReadOnlyList<ScenarioError> Errors(string[] lines)
    {
        var (sc, errors) = ScenarioParser.Parse(File, string.Join("\n", lines) + "\n");
        if (errors.Count > 0) Assert.Null(sc);
        return errors;
    }

    /// <summary>1-based column of the first occurrence of <paramref name="token"/> on 1-based line <paramref name="line"/>.</summary>
    private static int Col(string[] lines, int line, string token)
    {
        int i = lines[line - 1].IndexOf(token, StringComparison.Ordinal);
        Assert.True(i >= 0, $"'{token}' not on line {line}");
        return i + 1;
    }

    private static ScenarioError Single(string[] lines, string messagePart)
    {
        var errors = Errors(lines);
        var e = Assert.Single(errors);
        Assert.Contains(messagePart, e.Message);
        Assert.False(string.IsNullOrWhiteSpace(e.Hint), $"no hint for: {e}");
        Assert.Equal(File, e.Pos.File);
        return e;
    }

    [Fact]
    public void The_valid_base_scenario_parses_without_errors()
    {
        var (sc, errors) = ScenarioParser.Parse(File, string.Join("\n", With("  - ftruncate: {as: A, fd: g, length: 1G}")));
        Assert.Empty(errors);
        Assert.NotNull(sc);
        Assert.Equal(2, sc.Steps.Count);
        Assert.Equal(new SourcePos(File, 6, 5), sc.Steps[1].Pos);
    }

    [Fact]
    public void Malformed_yaml_is_a_syntax_error_at_the_offending_line_with_a_hint()
    {
        string[] lines = ["name: t", "host: {memory: 8G}", "steps:", "  - load: {as: A, map: a", "  - check:"];
        var errors = Errors(lines);
        var e = Assert.Single(errors);
        Assert.StartsWith("YAML syntax error", e.Message);
        Assert.NotNull(e.Hint);
        Assert.InRange(e.Pos.Line, 4, 6);
        Assert.True(e.Pos.Column >= 1);
    }

    [Fact]
    public void A_mapping_value_where_none_is_allowed_is_reported_on_its_line()
    {
        string[] lines = ["name: t", "host: a: b"];
        var e = Assert.Single(Errors(lines));
        Assert.StartsWith("YAML syntax error", e.Message);
        Assert.Equal(2, e.Pos.Line);
    }

    [Fact]
    public void A_document_that_is_not_a_mapping_is_rejected_at_line_1()
    {
        var e = Assert.Single(Errors(["- just", "- a list"]));
        Assert.Equal((1, 1), (e.Pos.Line, e.Pos.Column));
        Assert.NotNull(e.Hint);
    }

    [Fact]
    public void An_unknown_operation_is_reported_at_its_key_with_the_known_operations()
    {
        var lines = With("  - mmapp: {as: A, length: 1G, name: a}");
        var e = Single(lines, "unknown operation 'mmapp'");
        Assert.Equal((6, Col(lines, 6, "mmapp")), (e.Pos.Line, e.Pos.Column));
        Assert.Contains("mmap", e.Hint);
    }

    [Fact]
    public void An_unknown_argument_is_reported_at_its_key_with_the_valid_arguments()
    {
        var lines = With("  - ftruncate: {as: A, fd: g, length: 1G, lenght: 2G}");
        var e = Single(lines, "'ftruncate' has no argument 'lenght'");
        Assert.Equal((6, Col(lines, 6, "lenght")), (e.Pos.Line, e.Pos.Column));
        Assert.Contains("length", e.Hint);
    }

    [Fact]
    public void A_missing_required_argument_is_reported_at_the_argument_mapping()
    {
        var lines = With("  - ftruncate: {as: A, fd: g}");
        var e = Single(lines, "'ftruncate' needs argument 'length'");
        Assert.Equal((6, Col(lines, 6, "{")), (e.Pos.Line, e.Pos.Column));
    }

    [Theory]
    [InlineData("1Gi")]
    [InlineData("2MB")]
    [InlineData("-4K")]
    [InlineData("0.5")]
    [InlineData("lots")]
    public void A_bad_size_is_reported_at_the_value(string size)
    {
        var lines = With($"  - ftruncate: {{as: A, fd: g, length: {size}}}");
        var e = Single(lines, $"'length' value '{size}' is not a size");
        Assert.Equal((6, Col(lines, 6, size)), (e.Pos.Line, e.Pos.Column));
        Assert.Contains("1G-4K", e.Hint);
    }

    [Fact]
    public void Sizes_accept_units_hex_and_differences()
    {
        Assert.True(ScenarioParser.TryParseSize("1G-4K", out var v));
        Assert.Equal((1UL << 30) - 4096, v);
        Assert.True(ScenarioParser.TryParseSize("0x1000", out v)); Assert.Equal(4096UL, v);
        Assert.True(ScenarioParser.TryParseSize("1.5T", out v)); Assert.Equal(3UL << 39, v);
        Assert.True(ScenarioParser.TryParseSize("2M+4K", out v)); Assert.Equal((2UL << 20) + 4096, v);
    }

    [Fact]
    public void An_unknown_flag_is_reported_at_the_flag_list_with_the_valid_flags()
    {
        var lines = With("  - memfd_create: {as: A, name: h, flags: [MFD_HUGETLB, MFD_HUGE_3GB], fd: h}");
        var e = Single(lines, "'MFD_HUGE_3GB' is not a valid flags for memfd_create");
        Assert.Equal((6, Col(lines, 6, "[MFD_HUGETLB, MFD_HUGE_3GB")), (e.Pos.Line, e.Pos.Column));
        Assert.Contains("MFD_HUGE_1GB", e.Hint);
    }

    [Fact]
    public void An_unknown_madvise_advice_is_reported_at_the_value()
    {
        var lines = With("  - mmap: {as: A, length: 1G, flags: [MAP_SHARED], fd: g, name: a}", "  - madvise: {as: A, map: a, advice: MADV_FREE}");
        var e = Single(lines, "'MADV_FREE' is not a valid advice for madvise");
        Assert.Equal((7, Col(lines, 7, "MADV_FREE")), (e.Pos.Line, e.Pos.Column));
    }

    [Fact]
    public void An_undefined_process_is_reported_at_the_as_value()
    {
        var lines = With("  - ftruncate: {as: Z, fd: g, length: 1G}");
        var e = Single(lines, "process 'Z' is not defined before step 2");
        Assert.Equal((6, Col(lines, 6, "Z")), (e.Pos.Line, e.Pos.Column));
        Assert.Contains("fork", e.Hint);
    }

    [Fact]
    public void A_process_created_by_fork_is_defined_for_later_steps()
    {
        var lines = With("  - fork: {as: A, child: B}", "  - ftruncate: {as: B, fd: g, length: 1G}");
        Assert.Empty(Errors(lines));
    }

    [Fact]
    public void An_undefined_mapping_is_reported_at_the_map_value()
    {
        var lines = With("  - load: {as: A, map: nowhere, length: 4K}");
        var e = Single(lines, "mapping 'nowhere' is not defined before step 2");
        Assert.Equal((6, Col(lines, 6, "nowhere")), (e.Pos.Line, e.Pos.Column));
        Assert.Contains("mmap", e.Hint);
    }

    [Fact]
    public void An_undefined_fd_is_reported_at_the_fd_value()
    {
        var lines = With("  - ftruncate: {as: A, fd: nofd, length: 1G}");
        var e = Single(lines, "fd 'nofd' is not defined before step 2");
        Assert.Equal((6, Col(lines, 6, "nofd")), (e.Pos.Line, e.Pos.Column));
        Assert.Contains("memfd_create", e.Hint);
    }

    [Fact]
    public void A_mapping_name_used_twice_is_an_error_at_the_second_name()
    {
        var lines = With("  - mmap: {as: A, length: 1G, flags: [MAP_SHARED], fd: g, name: a}", "  - mmap: {as: A, length: 1G, flags: [MAP_SHARED], fd: g, name: a}");
        var e = Single(lines, "mapping name 'a' is used twice");
        Assert.Equal(7, e.Pos.Line);
    }

    [Fact]
    public void A_vm_name_used_twice_is_an_error_at_the_second_name()
    {
        // fuzz seed 10, input 93813: 128 vm_create steps of one name ran (each a new VM) until the CPU limit
        var lines = With("  - vm_create: {name: v, ram: 1G}", "  - vm_create: {name: v, ram: 1G}");
        Assert.Equal(7, Single(lines, "vm name 'v' is already a process, thread or VM").Pos.Line);
        Single(With("  - vm_create: {name: A, ram: 1G}"), "vm name 'A' is already a process, thread or VM");
    }

    [Fact]
    public void Guest_ram_on_4k_pages_beyond_the_limit_is_refused_once_at_the_vm_that_crosses_it()
    {
        string Vm(string name, string ram) => $"  - vm_create: {{name: {name}, ram: {ram}, page_size: 4K}}";
        Assert.Empty(Errors(With(Vm("a", "4G"), Vm("b", "4G"), "  - vm_create: {name: c, ram: 64G, page_size: 1G}")));
        var e = Single(With(Vm("a", "4G"), Vm("b", "4G"), Vm("c", "4K"), Vm("d", "4G")), "guest RAM on 4K pages adds up to more than 8G");
        Assert.Equal(8, e.Pos.Line);
        Assert.Contains("page_size: 2M or 1G", e.Hint);
    }

    [Theory]
    [InlineData("8X")]
    [InlineData("1.5G")]
    [InlineData("512M")]
    [InlineData("100T")]
    public void Bad_host_memory_is_reported_at_the_value_with_a_hint(string memory)
    {
        string[] lines = ["name: t", $"host: {{memory: {memory}}}", "processes: [A]", "steps:", "  - check:"];
        var e = Single(lines, $"host memory '{memory}' is not a whole number of GiB");
        Assert.Equal((2, Col(lines, 2, memory)), (e.Pos.Line, e.Pos.Column));
        Assert.Equal("memory: 8G", e.Hint);
    }

    [Fact]
    public void A_pool_larger_than_the_host_is_reported_at_the_hugepages_mapping()
    {
        string[] lines = ["name: t", "host: {memory: 4G, hugepages: {1G: 4}}", "processes: [A]", "steps:", "  - check:"];
        var e = Single(lines, "leave less than 512M");
        Assert.Equal((2, Col(lines, 2, "{1G")), (e.Pos.Line, e.Pos.Column));
    }

    [Fact]
    public void An_unknown_top_level_key_is_reported_with_the_known_keys()
    {
        string[] lines = ["name: t", "hots: {memory: 8G}", "host: {memory: 8G}", "steps:", "  - check:"];
        var e = Single(lines, "unknown key 'hots' in the scenario");
        Assert.Equal((2, 1), (e.Pos.Line, e.Pos.Column));
        Assert.Contains("host", e.Hint);
    }

    [Fact]
    public void Several_errors_in_one_file_are_all_reported_at_once_in_file_order()
    {
        var lines = With(
            "  - mmapp: {as: A}",                                  // 6: unknown op
            "  - ftruncate: {as: A, fd: g, length: 1Gi}",          // 7: bad size
            "  - ftruncate: {as: A, fd: g, lenght: 1G}",           // 8: unknown argument + missing length
            "  - load: {as: Q, map: zz}",                          // 9: undefined process + undefined mapping
            "  - memfd_create: {as: A, name: x, flags: [MFD_HUGE_7MB], fd: x}"); // 10: unknown flag
        var errors = Errors(lines);
        Assert.All(errors, e => Assert.False(string.IsNullOrWhiteSpace(e.Hint), e.ToString()));
        var byLine = errors.Select(e => e.Pos.Line).ToList();
        foreach (int line in new[] { 6, 7, 8, 9, 10 }) Assert.Contains(line, byLine);
        Assert.Contains(errors, e => e.Message.Contains("unknown operation 'mmapp'"));
        Assert.Contains(errors, e => e.Message.Contains("'length' value '1Gi' is not a size"));
        Assert.Contains(errors, e => e.Message.Contains("has no argument 'lenght'"));
        Assert.Contains(errors, e => e.Message.Contains("needs argument 'length'"));
        Assert.Contains(errors, e => e.Message.Contains("process 'Q'"));
        Assert.Contains(errors, e => e.Message.Contains("mapping 'zz'"));
        Assert.Contains(errors, e => e.Message.Contains("'MFD_HUGE_7MB'"));
        Assert.True(errors.Count >= 7, string.Join("\n", errors));
    }

    [Fact]
    public void An_error_prints_as_file_line_column_then_message_then_hint()
    {
        var lines = With("  - ftruncate: {as: A, fd: g, length: big}");
        var e = Single(lines, "is not a size");
        Assert.Matches(@"^t\.yaml:6:\d+: 'length' value 'big' is not a size \(hint: .+\)$", e.ToString());
    }

    [Theory]
    [InlineData("expect: {errno: EWHAT}", "unknown errno 'EWHAT'")]
    [InlineData("expect: {signals: [{to: A, si_code: BUS_MCEERR_XX}]}", "unknown si_code 'BUS_MCEERR_XX'")]
    [InlineData("expect: {hugepages: {1G: {totl: 1}}}", "unknown key 'totl'")]
    public void Bad_expectations_are_reported_with_a_hint(string expect, string message)
    {
        var lines = With("  - ftruncate: {as: A, fd: g, length: 1G}", "    " + expect);
        var e = Single(lines, message);
        Assert.Equal(7, e.Pos.Line);
    }
}

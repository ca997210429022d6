using HugeFault.Oracle;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Oracle;

public class OracleNormalizationTests
{
    [Theory]
    [InlineData("Memory failure: 0x100e05: Sending SIGBUS to HugeFault.RealR:146 due to hardware memory corruption",
        "Memory failure: <hex>: Sending SIGBUS to HugeFault.RealR:<pid> due to hardware memory corruption")]
    [InlineData("MCE: Killing A:149 due to hardware memory corruption fault at 7f7e443f3000",
        "MCE: Killing A:<pid> due to hardware memory corruption fault at <hex>")]
    [InlineData("Injecting memory failure for pfn 0x100e05 at process virtual address 0x7f7e44205000",
        "Injecting memory failure for pfn <hex> at process virtual address <hex>")]
    [InlineData("Kernel panic - not syncing: Memory failure on page 100c05", "Kernel panic - not syncing: Memory failure on page <hex>")]
    [InlineData("Kernel panic - not syncing: Memory failure on page 201", "Kernel panic - not syncing: Memory failure on page <hex>")]
    [InlineData("Memory failure: 0x1: recovery action for huge page: Recovered", "Memory failure: <hex>: recovery action for huge page: Recovered")]
    public void Log_lines_lose_pfns_addresses_and_pids(string raw, string normalized)
        => Assert.Equal(normalized, OracleTraces.NormalizeLog(raw));

    [Fact]
    public void Model_and_real_spellings_of_the_same_line_normalize_equal()
        => Assert.Equal(OracleTraces.NormalizeLog("MCE: Killing B:1002 due to hardware memory corruption fault at 7f0000405000"),
            OracleTraces.NormalizeLog("MCE: Killing B:151 due to hardware memory corruption fault at 7fd3a8605000"));

    [Theory]
    [InlineData("a", "a")]
    [InlineData("a+0x0", "a")]
    [InlineData("a+0x5000", "a+0x5000")]
    [InlineData("a+20480", "a+0x5000")]
    [InlineData("a+4M+0x1234", "a+0x401234")]
    public void Signal_addresses_are_mapping_plus_hex_offset(string sym, string normalized)
        => Assert.Equal(normalized, OracleTraces.NormalizeSym(sym));

    [Fact]
    public void Handles_compare_as_ok_and_errors_as_errno()
    {
        Assert.Equal("ok", OracleTraces.NormalizeRet(new OracleStep(1, "mmap", "A") { Ret = 0x7f0000000000 }));
        Assert.Equal("ok", OracleTraces.NormalizeRet(new OracleStep(1, "memfd_create", "A") { Ret = 7 }));
        Assert.Equal("-1 ENOMEM", OracleTraces.NormalizeRet(new OracleStep(1, "mmap", "A") { Ret = -1, Errno = "ENOMEM" }));
        Assert.Equal("4096", OracleTraces.NormalizeRet(new OracleStep(1, "pread", "A") { Ret = 4096 }));
        Assert.Null(OracleTraces.NormalizeRet(new OracleStep(1, "load", "A")));
    }

    [Fact]
    public void Outcome_detail_in_parentheses_is_dropped()
    {
        Assert.Equal("SIGBUS BUS_MCEERR_AR", OracleTraces.NormalizeOutcome("SIGBUS BUS_MCEERR_AR (machine check)"));
        Assert.Equal("blocked in userfaultfd", OracleTraces.NormalizeOutcome("blocked in userfaultfd"));
    }

    [Fact]
    public void Real_runner_lines_parse_into_steps_and_a_panic_marks_the_first_missing_step()
    {
        const string yaml = """
            name: t
            mainline: true
            host: {memory: 4G, hugepages: {2M: 1}}
            processes: [A]
            steps:
              - check: {}
              - check: {}
              - check: {}
            """;
        var (sc, errs) = ScenarioParser.Parse("t.yaml", yaml);
        Assert.Empty(errs);
        const string c = "\"counters\":{\"HugePages_Total\":1,\"HugePages_Free\":1,\"HugePages_Rsvd\":0,\"HugePages_Surp\":0,\"HardwareCorrupted\":4,\"2M\":{\"total\":1,\"free\":1,\"resv\":0,\"surp\":0},\"1G\":{\"total\":0,\"free\":0,\"resv\":0,\"surp\":0}}";
        string[] lines =
        [
            "{\"kind\":\"start\",\"scenario\":\"t\",\"kernel\":\"6.12.117+deb12-amd64\"}",
            "{\"kind\":\"step\",\"i\":1,\"op\":\"check\",\"as\":\"A\",\"result\":{\"ret\":-1,\"errno\":\"EIO\"},\"signals\":[{\"to\":\"A\",\"signo\":\"SIGBUS\",\"si_code\":\"BUS_MCEERR_AR\",\"si_addr\":\"a+0x5000\",\"si_addr_lsb\":21}]," + c + ",\"log\":[\"x\"]}",
            "{\"probe\":\"t\",\"kernel\":\"6.12.117+deb12-amd64\",\"proc\":\"console\",\"step\":\"console\",\"text\":\"Kernel panic - not syncing: Memory failure on page 100c05\"}",
            "{\"probe\":\"t\",\"proc\":\"host\",\"step\":\"timing\",\"wall_s\":9.1}",
        ];
        var t = OracleTraces.FromRealLines(lines, sc);
        Assert.Equal("6.12.117+deb12-amd64", t.Kernel);
        Assert.Equal(3, t.Steps.Count);
        var s1 = t.Steps[0];
        Assert.Equal(-1, s1.Ret); Assert.Equal("EIO", s1.Errno);
        Assert.Equal("A SIGBUS BUS_MCEERR_AR a+0x5000 lsb=21", OracleTraces.NormalizeSignal(Assert.Single(s1.Signals)));
        Assert.Equal(4, s1.Counters["HardwareCorrupted"]);
        Assert.True(t.Steps[1].Panic);
        Assert.False(t.Steps[2].Panic);
        Assert.NotNull(t.Steps[2].Skipped);
    }

    [Theory]
    [InlineData("Soft offline: 0x141e05: hugepage migration failed -12, type 0x17ffffc0000000(node=0|zone=2|lastcpupid=0x1fffff)")]
    [InlineData("Soft offline: 0x141e05: hugepage migration failed -12, type order=18 head|hugetlb|dirty")]
    public void Soft_offline_page_flag_prints_compare_equal(string line)
        => Assert.Equal("Soft offline: <hex>: hugepage migration failed -12, type <flags>", OracleTraces.NormalizeLog(line));

    [Fact]
    public void A_step_whose_process_died_compares_deaths_and_counters_and_checks_only_what_is_left()
    {
        const string yaml = """
            name: t
            mainline: true
            host: {memory: 4G, hugepages: {2M: 1}}
            processes: [{name: A, sigbus: default}]
            steps:
              - mmap: {as: A, length: 2M, flags: [MAP_SHARED, MAP_ANONYMOUS, MAP_HUGETLB], name: m}
              - madvise: {as: A, map: m, offset: 0, length: 4K, advice: MADV_HWPOISON}
                expect: {ret: 0, dead: {A: SIGBUS}}
              - check:
                expect: {dead: {A: SIGBUS}}
            """;
        var (sc, errs) = ScenarioParser.Parse("t.yaml", yaml);
        Assert.Empty(errs);
        const string c = "\"counters\":{\"HugePages_Total\":1,\"HugePages_Free\":0,\"HugePages_Rsvd\":0,\"HugePages_Surp\":0,\"HardwareCorrupted\":4,\"1G\":{\"total\":0,\"free\":0,\"resv\":0,\"surp\":0}}";
        string[] lines =
        [
            "{\"kind\":\"step\",\"i\":1,\"op\":\"mmap\",\"as\":\"A\",\"result\":{\"ret\":1},\"signals\":[]," + c + ",\"log\":[]}",
            "{\"kind\":\"step\",\"i\":2,\"op\":\"madvise\",\"as\":\"A\",\"result\":{\"note\":\"process died\"},\"signals\":[]," + c + ",\"log\":[],\"deaths\":{\"A\":\"SIGBUS\"}}",
            "{\"kind\":\"step\",\"i\":3,\"op\":\"check\",\"as\":\"(controller)\",\"result\":{},\"signals\":[]," + c + ",\"log\":[]}",
        ];
        var real = OracleTraces.FromRealLines(lines, sc);
        var died = real.Steps[1];
        Assert.True(died.Died);
        Assert.Null(died.Skipped);
        Assert.Equal("SIGBUS", died.Deaths["A"]);
        var model = new OracleTrace("model", "6.12", [
            real.Steps[0],
            died with { Died = false, Ret = 0 },
            real.Steps[2],
        ]);
        var diff = OracleDiff.Compare(sc!, model, real);
        Assert.All(diff, d => Assert.True(d.Match, string.Join("; ", d.Fields.Where(f => !f.Match))));
        Assert.DoesNotContain(diff[1].Fields, f => f.Field == "ret");
        Assert.Empty(diff[1].RealFailures);   // ret is not checked: the call never returned
        Assert.Empty(diff[2].RealFailures);   // the death seen at step 2 holds at step 3
    }
}

public class OracleNoiseTests
{
    [Fact]
    public void Emulator_timer_complaints_are_not_compared()
    {
        var pool = new Dictionary<string, long> { ["HugePages_Total"] = 1 };
        var m = new OracleStep(4, "store", "A") { Outcome = "ok", Done = 1, Counters = pool };
        var r = m with { Log = ["hrtimer: interrupt took 1234567 ns"] };
        Assert.True(OracleDiff.CompareStep(m, r).Single(f => f.Field == "log").Match);
        Assert.False(OracleDiff.CompareStep(m, r with { Log = ["Memory failure: 0x1: recovery action for huge page: Recovered"] }).Single(f => f.Field == "log").Match);
    }
}

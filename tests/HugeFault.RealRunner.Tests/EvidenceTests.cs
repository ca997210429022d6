using System.Text.Json;

namespace HugeFault.RealRunner.Tests;

/// <summary>
/// The committed real-kernel results (tools/realkernel/results/*.jsonl) are evidence the model is
/// corrected against. These tests pin the observations quoted in tools/realkernel/README.md, so a
/// re-run on another kernel that changes any of them is noticed.
/// </summary>
public sealed class EvidenceTests
{
    private static readonly string ResultsDir = FindResults();

    private static string FindResults()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "HugeFault.slnx")))
                return Path.Combine(d.FullName, "tools", "realkernel", "results");
        throw new DirectoryNotFoundException("repository root (HugeFault.slnx) not found");
    }

    private static List<JsonElement> Lines(string probe) =>
        File.ReadLines(Path.Combine(ResultsDir, probe + ".jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    private static JsonElement Step(string probe, string step, string proc = "A") =>
        Lines(probe).Single(e => e.GetProperty("step").GetString() == step && e.GetProperty("proc").GetString() == proc);

    private static JsonElement OnlySignal(JsonElement line) => Assert.Single(line.GetProperty("signals").EnumerateArray());

    private static void AssertSignal(JsonElement line, string code, string map, string off, int lsb, string site)
    {
        var s = OnlySignal(line);
        Assert.Equal(code, s.GetProperty("si_code_name").GetString());
        Assert.Equal(map, s.GetProperty("map").GetString());
        Assert.Equal(off, s.GetProperty("off").GetString());
        Assert.Equal(lsb, s.GetProperty("si_addr_lsb").GetInt32());
        Assert.Equal(site, s.GetProperty("site").GetString());
    }

    private static long Num(JsonElement e, string k) => e.GetProperty(k).GetInt64();
    private static string? Str(JsonElement e, string k) => e.TryGetProperty(k, out var v) ? v.GetString() : null;

    [Fact]
    public void Every_result_line_is_JSON_naming_its_probe_and_the_kernel()
    {
        var files = Directory.GetFiles(ResultsDir, "*.jsonl");
        Assert.NotEmpty(files);
        foreach (var f in files)
        {
            string probe = Path.GetFileNameWithoutExtension(f);
            foreach (var e in Lines(probe))
            {
                Assert.Equal(probe, Str(e, "probe"));
                Assert.StartsWith("6.12.", Str(e, "kernel"));
            }
        }
    }

    [Fact]
    public void The_injector_gets_AR_at_the_exact_raw_page_during_madvise_and_madvise_returns_0()
    {
        var l = Step("a-late", "inject-A-X");
        Assert.Equal(0, Num(l, "ret"));
        AssertSignal(l, "BUS_MCEERR_AR", "A", "0x5000", 21, "syscall-return");
    }

    [Fact]
    public void A_late_kill_process_gets_nothing_at_injection_and_AR_at_the_exact_address_it_touches()
    {
        Assert.Empty(Step("a-late", "B-after-injection", "B").GetProperty("signals").EnumerateArray());
        AssertSignal(Step("a-late", "B-read-Y", "B"), "BUS_MCEERR_AR", "B", "0x1f3000", 21, "fixup");
        AssertSignal(Step("a-late", "C-read-Z"), "BUS_MCEERR_AR", "C", "0x100000", 21, "fixup");
    }

    [Theory]
    [InlineData("a-early")]
    [InlineData("a-early-sysctl")]
    [InlineData("a-early-untouched")]
    public void An_early_kill_process_gets_AO_at_its_own_address_of_the_raw_page(string probe)
        => AssertSignal(Step(probe, "B-after-injection", "B"), "BUS_MCEERR_AO", "B", "0x5000", 21, "async-ignored");

    [Fact]
    public void Madvise_on_an_already_poisoned_hugetlb_mapping_fails_with_EFAULT_and_no_signal()
    {
        foreach (var step in new[] { "madvise-X2-second-raw-page", "madvise-X-same-raw-page" })
        {
            var l = Step("b-repoison", step);
            Assert.Equal("EFAULT", Str(l, "errno_name"));
            Assert.Empty(l.GetProperty("signals").EnumerateArray());
        }
    }

    [Fact]
    public void Corrupt_pfn_of_a_second_raw_page_adds_4kB_and_returns_EHWPOISON_the_same_page_adds_nothing()
    {
        Assert.Equal("EHWPOISON", Str(Step("b-repoison", "corrupt-pfn-X2"), "errno_name"));
        Assert.Equal(4, Num(Step("b-repoison", "after-corrupt-X2"), "d_hwcorrupted_kb"));
        Assert.Equal("EHWPOISON", Str(Step("b-repoison", "corrupt-pfn-X-again"), "errno_name"));
        Assert.Equal(0, Num(Step("b-repoison", "after-corrupt-X-again"), "d_hwcorrupted_kb"));
        Assert.Equal("EIO", Str(Step("b-repoison", "pread-after-corrupt-X2"), "errno_name"));
    }

    [Fact]
    public void One_madvise_over_three_raw_pages_of_a_folio_poisons_only_the_first()
    {
        Assert.Equal(4, Num(Step("b-repoison", "after-madvise-3-pages"), "d_hwcorrupted_kb"));
        Assert.Equal(4096, Num(Step("b-repoison", "pread-folio1-page1"), "ret"));
    }

    [Fact]
    public void Anonymous_private_poison_signals_the_injector_and_dissolves_the_folio_at_once()
    {
        AssertSignal(Step("c-anon-private", "inject-X"), "BUS_MCEERR_AR", "P", "0x5000", 21, "syscall-return");
        var m = Step("c-anon-private", "after-inject");
        Assert.Equal(-1, Num(m, "d_total"));
        Assert.Equal(0, Num(m, "d_free"));
        AssertSignal(Step("c-anon-private", "child-read-Y", "child"), "BUS_MCEERR_AR", "P", "0x1f3000", 21, "fixup");
    }

    [Fact]
    public void Sequential_reads_stop_at_the_poisoned_raw_page_with_EIO()
    {
        foreach (var c in new[] { 2048, 4096, 8192, 16384 })
        {
            var l = Step("d-pread", $"seq-read-c{c}");
            Assert.Equal("0x101000", Str(l, "bytes_before_error"));
            Assert.Equal("EIO", Str(l, "final_errno"));
            Assert.True(l.GetProperty("data_ok").GetBoolean());
        }
        Assert.Equal(4096, Num(Step("d-pread", "pread-3P-at-X-P"), "ret"));
        Assert.Equal(100, Num(Step("d-pread", "pread-2P-at-X-100"), "ret"));
        Assert.Equal(16384, Num(Step("d-pread", "pread-hole"), "zero_bytes"));
    }

    [Fact]
    public void A_free_pool_page_is_dissolved_unless_it_backs_a_reservation()
    {
        var free = Step("e-free-pool", "after-corrupt");
        Assert.Equal((-1, -1, 4), (Num(free, "d_total"), Num(free, "d_free"), Num(free, "d_hwcorrupted_kb")));
        Assert.Equal("EBUSY", Str(Step("e-free-reserved", "corrupt-pfn-reserved"), "errno_name"));
        var resv = Step("e-free-reserved", "after-corrupt");
        Assert.Equal((0, 0, 4), (Num(resv, "d_total"), Num(resv, "d_free"), Num(resv, "d_hwcorrupted_kb")));
        AssertSignal(Step("e-free-reserved", "touch-resv-page1"), "BUS_ADRERR", "R", "0x200000", 0, "fixup");
    }

    [Fact]
    public void A_truncated_poisoned_folio_never_returns_to_the_free_list_and_becomes_surplus_on_shrink()
    {
        Assert.Equal(0, Num(Step("f-truncate", "after-truncate-T"), "d_free"));
        Assert.Equal(0, Num(Step("f-truncate", "after-punch-H"), "d_free"));
        var shrink = Step("f-truncate", "after-shrink");
        Assert.Equal((2, 0, 2), (Num(shrink, "total"), Num(shrink, "free"), Num(shrink, "surp")));
    }

    [Fact]
    public void UFFDIO_POISON_installs_whole_huge_page_markers_without_touching_HardwareCorrupted()
    {
        foreach (var area in new[] { "private", "shared" })
        {
            Assert.Equal(2097152, Num(Step("g-uffd-poison", $"{area}-poison-page0"), "updated"));
            Assert.Equal("EINVAL", Str(Step("g-uffd-poison", $"{area}-poison-unaligned-start"), "errno_name"));
            Assert.Equal("EINVAL", Str(Step("g-uffd-poison", $"{area}-poison-aligned-start-4k-len"), "errno_name"));
            Assert.Equal("EEXIST", Str(Step("g-uffd-poison", $"{area}-poison-page0-again"), "errno_name"));
            AssertSignal(Step("g-uffd-poison", $"{area}-read-page0+0x5000"), "BUS_MCEERR_AR", area, "0x5000", 21, "fixup");
        }
        Assert.Equal(0, Num(Step("g-uffd-poison", "shared-after-reads"), "hwcorrupted_kb"));
    }

    [Fact]
    public void With_recovery_off_madvise_panics_the_kernel()
        => Assert.Contains(Lines("h-recovery-off"),
            e => Str(e, "text")?.Contains("Kernel panic - not syncing: Memory failure on page") == true);

    [Fact]
    public void An_empty_pool_fails_mmap_with_ENOMEM_and_a_noreserve_touch_with_BUS_ADRERR()
    {
        Assert.Equal("ENOMEM", Str(Step("i-pool-empty", "mmap-shared"), "errno_name"));
        AssertSignal(Step("i-pool-empty", "read-noreserve"), "BUS_ADRERR", "N", "0x5000", 0, "fixup");
    }

    [Fact]
    public void Unpoison_is_refused_while_the_folio_is_held_and_succeeds_after_truncate()
    {
        Assert.Equal(-4, Num(Step("k-unpoison", "after-unpoison-free-raw"), "d_hwcorrupted_kb"));
        Assert.Equal("EBUSY", Str(Step("k-unpoison", "unpoison-in-use-head"), "errno_name"));
        Assert.Equal("EBUSY", Str(Step("k-unpoison", "unpoison-unmapped-head"), "errno_name"));
        var t = Step("k-unpoison", "after-unpoison-truncated");
        Assert.Equal((1, -4), (Num(t, "d_free"), Num(t, "d_hwcorrupted_kb")));
    }

    [Fact]
    public void Soft_offline_migrates_the_content_and_dissolves_the_old_folio_even_with_no_free_pool_page()
    {
        Assert.Equal(0, Num(Step("l-soft-offline", "soft-offline-with-spare"), "ret"));
        var m = Step("l-soft-offline", "after-soft-offline");
        Assert.Equal((-1, 4), (Num(m, "d_total"), Num(m, "d_hwcorrupted_kb")));
        Assert.Equal(165, Num(Step("l-soft-offline", "read-marker"), "value"));
        Assert.Equal(0, Num(Step("l-soft-offline", "soft-offline-no-spare"), "ret"));
        Assert.Equal(4, Num(Step("l-soft-offline", "after-soft-offline-no-spare"), "d_hwcorrupted_kb"));
    }

    [Fact]
    public void On_a_1GiB_folio_the_lsb_is_30_and_the_address_exact()
    {
        AssertSignal(Step("j-1g-shared", "inject-X"), "BUS_MCEERR_AR", "G", "0x12345000", 30, "syscall-return");
        AssertSignal(Step("j-1g-shared", "read-Y"), "BUS_MCEERR_AR", "G", "0x3ffff000", 30, "fixup");
    }
}

using System.Text.Json;
using HugeFault.RealRunner.Probing;

namespace HugeFault.RealRunner.Tests;

public sealed class ParsingTests
{
    [Fact]
    public void Meminfo_reads_the_hugetlb_counters_and_HardwareCorrupted()
    {
        const string text = "MemTotal:        4000000 kB\nHardwareCorrupted:     8 kB\nHugePages_Total:       4\n" +
            "HugePages_Free:        3\nHugePages_Rsvd:        1\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n";
        Assert.Equal(new Meminfo(4, 3, 1, 0, 8), Meminfo.Parse(text));
    }

    [Fact]
    public void A_JSON_line_escapes_kernel_log_text()
    {
        string s = new JsonLine().Str("text", "a \"quoted\"\\path\tand\u0001ctl").Num("n", -1).Hex("h", 0x200000).ToString();
        using var d = JsonDocument.Parse(s);
        Assert.Equal("a \"quoted\"\\path\tand\u0001ctl", d.RootElement.GetProperty("text").GetString());
        Assert.Equal("0x200000", d.RootElement.GetProperty("h").GetString());
    }
}

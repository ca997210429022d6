using CsCheck;
using HugeFault.Tests.Properties;
using HugeFault.Simulation;

namespace HugeFault.Reports.Tests;

public class FmtTests
{
    [Theory]
    [InlineData(1L << 30, "1 GiB")]
    [InlineData(4096L, "4 KiB")]
    [InlineData(8192L, "8 KiB")]
    [InlineData((1L << 30) - 64, "1.00 GiB")]
    [InlineData((1L << 30) - 4096, "1.00 GiB")]
    [InlineData(8064L, "7.88 KiB")]
    [InlineData(4218880L, "4.02 MiB")]
    [InlineData(0L, "0")]
    [InlineData(64L, "64 B")]
    public void Bytes_use_binary_units_and_never_print_1024_of_a_unit(long bytes, string expected) => Assert.Equal(expected, Fmt.Bytes(bytes));

    [Fact]
    public void No_byte_count_prints_a_four_digit_1024()
    {
        Pbt.Run(Gen.Long[1, 1L << 50], b => !Fmt.Bytes(b).StartsWith("1,024 ", StringComparison.Ordinal) && !Fmt.Bytes(b).StartsWith("1024", StringComparison.Ordinal), iter: 100, stream: 41);
    }

    [Fact]
    public void Counts_have_thousands_separators_and_a_true_minus() =>
        Assert.Equal(("526,342", "−2,048"), (Fmt.Count(526342), Fmt.Count(-2048)));

    [Fact]
    public void An_interval_shares_its_decimals_with_the_mean() =>
        Assert.Equal(("1.70 [1.66, 1.74]", "Δ −2.27 [−2.32, −2.21]"), (Fmt.Interval(1.704, 1.663, 1.744), Fmt.Delta(-2.265, -2.319, -2.212)));

    [Fact]
    public void Positive_intervals_never_go_below_zero_and_contain_the_mean()
    {
        Pbt.Run(Gen.Select(Gen.Double[0, 1e6], Gen.Double[0, 1e7]), c =>
        {
            var (m, se) = c;
            var ci = Intervals.Positive(m, se);
            return ci.Lower >= 0 && (m == 0 || (ci.Lower <= m && ci.Upper >= m));
        }, iter: 100, stream: 42);
    }

    [Fact]
    public void Wilson_intervals_stay_inside_0_1()
    {
        Pbt.Run(Gen.Select(Gen.Long[0, 10_000], Gen.Long[1, 10_000]).Where((k, n) => k <= n), c =>
        {
            var (k, n) = c;
            var ci = Intervals.Wilson(k, n);
            return ci.Lower >= 0 && ci.Upper <= 1 && ci.Lower <= (double)k / n && ci.Upper >= (double)k / n;
        }, iter: 100, stream: 43);
    }
}

using HugeFault.Mm;

namespace HugeFault.Tests.Oracle;

/// <summary>The model side of the pattern-byte pin (the runner side is tests/HugeFault.RealRunner.Tests/PatternByteTests.cs).</summary>
public class PatternByteTests
{
    [Theory]
    [InlineData(0L, 219)]
    [InlineData(1L, 79)]
    [InlineData(63L, 254)]
    [InlineData(0x5000L, 214)]
    [InlineData(0x12345000L, 191)]
    [InlineData((1L << 30) - 1, 240)]
    public void Model_pattern_bytes_are_pinned(long offset, int expected)
    {
        Assert.Equal(0x08d59707b575eabaUL, ContentTag.PatternSeed("p1"));
        Assert.Equal((byte)expected, ContentTag.PatternByte(ContentTag.PatternSeed("p1"), offset));
    }
}

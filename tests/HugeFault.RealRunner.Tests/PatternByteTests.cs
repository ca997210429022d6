using HugeFault.RealRunner.Scenarios;

namespace HugeFault.RealRunner.Tests;

/// <summary>
/// The runner's copy of the model's ContentTag.PatternByte must write the bytes the model means by a
/// pattern. The same values are pinned against the model in tests/HugeFault.Tests/Oracle/PatternByteTests.cs.
/// </summary>
public class PatternByteTests
{
    internal const ulong P1Seed = 0x08d59707b575eabaUL; // ContentTag.PatternSeed("p1")

    [Theory]
    [InlineData(0L, 219)]
    [InlineData(1L, 79)]
    [InlineData(63L, 254)]
    [InlineData(0x5000L, 214)]
    [InlineData(0x12345000L, 191)]
    [InlineData((1L << 30) - 1, 240)]
    public void Runner_pattern_bytes_are_the_models(long offset, int expected)
        => Assert.Equal((byte)expected, ScenarioExec.PatternByte(P1Seed, offset));
}

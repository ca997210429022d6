using HugeFault.Simulation;

namespace HugeFault.Tests.Fleet;

/// <summary>
/// The fleet draws a VM's hotness as a polar pair and takes its exp and log only when an error reaches the VM: the value
/// must be the eager lognormal's, bit for bit, and the stream must be left where the eager draw leaves it.
/// </summary>
public class LazyHotnessTests
{
    [Theory]
    [InlineData(0.5)]
    [InlineData(1.0)]
    [InlineData(2.5)]
    public void Polar_pair_then_transform_is_the_lognormal_bit_for_bit(double sigma)
    {
        for (ulong stream = 0; stream < 2000; stream++)
        {
            var eager = Xoshiro256StarStar.ForStream(7, stream);
            var lazy = Xoshiro256StarStar.ForStream(7, stream);
            double expected = Distributions.LogNormal(ref eager, -0.5 * sigma * sigma, sigma);
            var (u, s) = Distributions.PolarPair(ref lazy);
            double actual = Math.Exp(-0.5 * sigma * sigma + sigma * Distributions.NormalFromPolar(u, s));
            Assert.Equal(BitConverter.DoubleToInt64Bits(expected), BitConverter.DoubleToInt64Bits(actual));
            Assert.Equal(eager.NextUInt64(), lazy.NextUInt64());
        }
    }
}

using System.Runtime.CompilerServices;
using MathNet.Numerics;

namespace HugeFault.Simulation;

/// <summary>
/// Random variate samplers. Each takes the generator <c>by ref</c> and never stores it (SimSharp style), so the
/// caller decides which stream a draw comes from and runs stay reproducible. Parameters are trusted: callers
/// validate user input before reaching a hot loop.
/// </summary>
public static class Distributions
{
    /// <summary>Exponential gap with rate <paramref name="rate"/> (mean 1/rate), by inversion.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Exponential(ref Xoshiro256StarStar rng, double rate) => -Math.Log(rng.NextDoubleNonZero()) / rate;

    /// <summary>Standard normal by Marsaglia's polar method (the second variate is discarded to keep the sampler stateless).</summary>
    public static double StandardNormal(ref Xoshiro256StarStar rng)
    {
        while (true)
        {
            double u = 2.0 * rng.NextDouble() - 1.0;
            double v = 2.0 * rng.NextDouble() - 1.0;
            double s = u * u + v * v;
            if (s > 0.0 && s < 1.0) return u * Math.Sqrt(-2.0 * Math.Log(s) / s);
        }
    }

    /// <summary>
    /// The pair (u, s) Marsaglia's polar method accepts, drawn as <see cref="StandardNormal"/> draws it; the variate is
    /// <see cref="NormalFromPolar"/>(u, s), bit for bit. Draw now, transform when (and if) the value is needed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (double U, double S) PolarPair(ref Xoshiro256StarStar rng)
    {
        while (true)
        {
            double u = 2.0 * rng.NextDouble() - 1.0;
            double v = 2.0 * rng.NextDouble() - 1.0;
            double s = u * u + v * v;
            if (s > 0.0 && s < 1.0) return (u, s);
        }
    }

    /// <summary>The standard normal variate of a <see cref="PolarPair"/>.</summary>
    public static double NormalFromPolar(double u, double s) => u * Math.Sqrt(-2.0 * Math.Log(s) / s);

    /// <summary>Lognormal: exp(N(<paramref name="mu"/>, <paramref name="sigma"/>²)). With mu = −σ²/2 the mean is 1, which is how a per-DIMM rate multiplier should be parameterised.</summary>
    public static double LogNormal(ref Xoshiro256StarStar rng, double mu, double sigma) => Math.Exp(mu + sigma * StandardNormal(ref rng));

    /// <summary>Gamma(<paramref name="shape"/>, <paramref name="scale"/>) by Marsaglia and Tsang (2000); shape &lt; 1 uses the boost Gamma(a+1)·U^(1/a).</summary>
    public static double Gamma(ref Xoshiro256StarStar rng, double shape, double scale)
    {
        if (shape < 1.0)
        {
            double boost = Math.Pow(rng.NextDoubleNonZero(), 1.0 / shape);
            return Gamma(ref rng, shape + 1.0, scale) * boost;
        }
        double d = shape - 1.0 / 3.0;
        double c = 1.0 / Math.Sqrt(9.0 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = StandardNormal(ref rng);
                v = 1.0 + c * x;
            } while (v <= 0.0);
            v = v * v * v;
            double u = rng.NextDoubleNonZero();
            if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
            if (Math.Log(u) < 0.5 * x * x + d * (1.0 - v + Math.Log(v))) return d * v * scale;
        }
    }

    /// <summary>
    /// Poisson(<paramref name="mean"/>). Small means use sequential inversion (expected mean+1 uniforms); means of
    /// 30 and above use Hörmann's PTRS transformed rejection (1993), O(1) expected time.
    /// </summary>
    public static long Poisson(ref Xoshiro256StarStar rng, double mean)
    {
        if (mean <= 0.0) return 0;
        if (mean < 30.0)
        {
            double p = Math.Exp(-mean);
            double cdf = p;
            double u = rng.NextDouble();
            long k = 0;
            while (u >= cdf)
            {
                k++;
                p *= mean / k;
                double next = cdf + p;
                if (next == cdf) break; // numerical end of the tail
                cdf = next;
            }
            return k;
        }
        return PoissonPtrs(ref rng, mean);
    }

    private static long PoissonPtrs(ref Xoshiro256StarStar rng, double lambda)
    {
        double slam = Math.Sqrt(lambda);
        double logLambda = Math.Log(lambda);
        double b = 0.931 + 2.53 * slam;
        double a = -0.059 + 0.02483 * b;
        double invAlpha = 1.1239 + 1.1328 / (b - 3.4);
        double vr = 0.9277 - 3.6224 / (b - 2.0);
        while (true)
        {
            double u = rng.NextDouble() - 0.5;
            double v = rng.NextDoubleNonZero();
            double us = 0.5 - Math.Abs(u);
            long k = (long)Math.Floor((2.0 * a / us + b) * u + lambda + 0.43);
            if (us >= 0.07 && v <= vr) return k;
            if (k < 0 || (us < 0.013 && v > us)) continue;
            if (Math.Log(v) + Math.Log(invAlpha) - Math.Log(a / (us * us) + b)
                <= -lambda + k * logLambda - SpecialFunctions.GammaLn(k + 1.0))
                return k;
        }
    }
}

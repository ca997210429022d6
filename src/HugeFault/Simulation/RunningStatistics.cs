namespace HugeFault.Simulation;

/// <summary>
/// Online mean and variance (Welford 1962) without storing samples, mergeable across threads (Chan et al. 1979),
/// so per-block accumulators can be reduced in block order for thread-count-independent results.
/// </summary>
public struct RunningStatistics
{
    private long _count;
    private double _mean;
    private double _m2;

    /// <summary>Number of samples added.</summary>
    public readonly long Count => _count;

    /// <summary>Sample mean (0 when empty).</summary>
    public readonly double Mean => _mean;

    /// <summary>Unbiased sample variance (0 with fewer than two samples).</summary>
    public readonly double Variance => _count > 1 ? _m2 / (_count - 1) : 0.0;

    /// <summary>Standard error of the mean.</summary>
    public readonly double StandardError => _count > 1 ? Math.Sqrt(Variance / _count) : 0.0;

    /// <summary>Normal-approximation 95 % confidence interval of the mean.</summary>
    public readonly ConfidenceInterval ConfidenceInterval95 =>
        new(_mean - 1.959963984540054 * StandardError, _mean + 1.959963984540054 * StandardError);

    /// <summary>Adds one sample.</summary>
    public void Add(double x)
    {
        _count++;
        double delta = x - _mean;
        _mean += delta / _count;
        _m2 += delta * (x - _mean);
    }

    /// <summary>Folds <paramref name="other"/> into this accumulator (order matters only in the last bits of the floating-point result).</summary>
    public void Merge(in RunningStatistics other)
    {
        if (other._count == 0) return;
        if (_count == 0) { this = other; return; }
        long n = _count + other._count;
        double delta = other._mean - _mean;
        _mean += delta * other._count / n;
        _m2 += other._m2 + delta * delta * ((double)_count * other._count / n);
        _count = n;
    }
}

/// <summary>A two-sided confidence interval.</summary>
public readonly record struct ConfidenceInterval(double Lower, double Upper)
{
    /// <summary>True when <paramref name="x"/> lies in [Lower, Upper].</summary>
    public bool Contains(double x) => x >= Lower && x <= Upper;
}

/// <summary>
/// A binomial proportion estimated from <see cref="Successes"/> out of <see cref="Trials"/>. The 95 % interval is
/// Wilson's score interval, not the Wald interval, because the UE probabilities of interest are often tiny or zero
/// and Wald collapses to [0, 0] there.
/// </summary>
public readonly record struct ProportionEstimate(long Successes, long Trials)
{
    private const double Z95 = 1.959963984540054;

    /// <summary>The point estimate successes / trials.</summary>
    public double Value => Trials == 0 ? 0.0 : (double)Successes / Trials;

    /// <summary>Wilson score 95 % interval.</summary>
    public ConfidenceInterval Wilson95
    {
        get
        {
            if (Trials == 0) return new(0.0, 1.0);
            double n = Trials;
            double p = Value;
            double z2 = Z95 * Z95;
            double denom = 1.0 + z2 / n;
            double centre = (p + z2 / (2.0 * n)) / denom;
            double half = Z95 * Math.Sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom;
            // At 0 or n successes the bound is exactly 0 or 1; clamp the rounding residue of centre − half.
            double lower = Successes == 0 ? 0.0 : Math.Max(0.0, centre - half);
            double upper = Successes == Trials ? 1.0 : Math.Min(1.0, centre + half);
            return new(lower, upper);
        }
    }
}

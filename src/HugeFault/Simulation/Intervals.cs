namespace HugeFault.Simulation;

/// <summary>
/// Honest 95 % intervals from the sufficient statistics the fleet keeps (count, sum, sum of squares):
/// <list type="bullet">
/// <item>proportions (a 0/1 value per server): Wilson's score interval, inside [0, 1] and not empty at 0;</item>
/// <item>means of non-negative quantities (rates, bytes, counts): the log-scale (delta-method) interval
///   mean·exp(±z·se/mean), which stays positive and is asymmetric like the skewed sampling distribution of a
///   heavy-tailed mean; a sum of exactly zero gives [0, 0];</item>
/// <item>paired differences (either sign): the normal interval mean ± z·se, as before.</item>
/// </list>
/// </summary>
public static class Intervals
{
    /// <summary>z for a two-sided 95 % interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>The methods, in one sentence each, for the report's "how to read" note.</summary>
    public const string Method =
        "95 % intervals: Wilson score for proportions; log-scale (delta method) for means of non-negative quantities, " +
        "so they never go below zero; normal for paired differences Δ (same servers, same errors).";

    /// <summary>Mean and standard error of the mean from n samples' sum and sum of squares.</summary>
    public static (double Mean, double Se) MeanSe(long n, double sum, double sumSq)
    {
        if (n <= 0) return (0, 0);
        double mean = sum / n;
        double var = n > 1 ? Math.Max(0, (sumSq - sum * sum / n) / (n - 1)) : 0;
        return (mean, Math.Sqrt(var / n));
    }

    /// <summary>Normal interval (for differences).</summary>
    public static ConfidenceInterval Normal(double mean, double se) => new(mean - Z95 * se, mean + Z95 * se);

    /// <summary>Log-scale interval for the mean of a non-negative quantity; [0, 0] when the mean is 0.</summary>
    public static ConfidenceInterval Positive(double mean, double se) => Positive(mean, se, Z95);

    /// <summary>Log-scale interval with quantile <paramref name="z"/> (e.g. Student's t for batch means).</summary>
    public static ConfidenceInterval Positive(double mean, double se, double z)
    {
        if (!(mean > 0)) return new(0, 0);
        if (!(se > 0)) return new(mean, mean);
        double f = Math.Exp(z * se / mean);
        return new(mean / f, mean * f);
    }

    /// <summary>Wilson score interval for <paramref name="successes"/> of <paramref name="trials"/>.</summary>
    public static ConfidenceInterval Wilson(long successes, long trials) => new ProportionEstimate(successes, trials).Wilson95;
}

namespace HugeFault.Reports;

/// <summary>A reported number: a mean with its 95 % interval, or an exact value (Lower = Upper = Mean).</summary>
public readonly record struct Estimate(double Mean, double Lower, double Upper)
{
    public static Estimate Exact(double x) => new(x, x, x);
    public bool IsExact => Lower == Mean && Upper == Mean;
    public double HalfWidth => (Upper - Lower) / 2;
    /// <summary>The interval lies entirely below zero / above zero.</summary>
    public bool BelowZero => Upper < 0;
    public bool AboveZero => Lower > 0;
}

/// <summary>How a metric is shown and where it comes from. Every metric is a cost: lower is better.</summary>
/// <param name="Key">Stable key (tests, JSON).</param>
/// <param name="Label">Short table header.</param>
/// <param name="Unit">Unit for sentences ("per 1,000 VM-years"); empty when the formatted value carries it.</param>
/// <param name="Format">Formats one value (bytes in binary units, counts with separators…).</param>
/// <param name="Fleet">From the fleet Monte Carlo (an interval, paired Δ) rather than from the scenarios (exact).</param>
/// <param name="Cost">Counts in rankings and dominance; false for context figures (UE events, fallbacks) that only explain.</param>
/// <param name="Amount">An amount (bytes, time: "less", "least") rather than a count ("fewer", "fewest").</param>
public sealed record MetricSpec(string Key, string Label, string Unit, Func<double, string> Format, bool Fleet, bool Cost = true, bool Amount = false)
{
    public string Fewer => Amount ? "less" : "fewer";
    public string Fewest => Amount ? "least" : "fewest";

    public string Show(Estimate e) => e.IsExact || !Fleet
        ? Format(e.Mean) + (Unit.Length > 0 ? " " + Unit : "")
        : Fmt.Interval(e.Mean, e.Lower, e.Upper, Unit);

    /// <summary>
    /// A difference in this metric's own units: a fleet Δ with its 95 % interval ("Δ −2.16 [−2.33, −2.00] per 1,000
    /// VM-years"); an exact scenario difference has no interval and is formatted like the values ("Δ −1.00 GiB").
    /// </summary>
    public string ShowDiff(Estimate d, bool unit = true)
    {
        string u = unit && Unit.Length > 0 ? " " + Unit : "";
        if (Fleet && !d.IsExact) return Fmt.Delta(d.Mean, d.Lower, d.Upper) + u;
        return "Δ " + (d.Mean > 0 ? "+" : "") + Format(d.Mean) + u;
    }
}

/// <summary>
/// Per-policy figures the summary table shows and the verdict reasons about. Fleet metrics carry the paired
/// difference against the baseline (same servers, same errors); the difference of two other policies is bounded
/// without their covariance: Var(Δa − Δb) ≤ (σΔa + σΔb)² (Cauchy–Schwarz), so its interval is conservative.
/// </summary>
public sealed class PolicyFigures
{
    public PolicyFigures(IReadOnlyList<string> policies, IReadOnlyList<MetricSpec> metrics, string? baseline = "mainline")
    {
        Policies = policies;
        Metrics = metrics;
        Baseline = baseline is not null && policies.Contains(baseline) ? baseline : null;
    }

    public IReadOnlyList<string> Policies { get; }
    public IReadOnlyList<MetricSpec> Metrics { get; }
    public string? Baseline { get; }
    public Dictionary<(string Policy, string Metric), Estimate> Values { get; } = new();
    /// <summary>Paired Δ vs <see cref="Baseline"/> (fleet metrics).</summary>
    public Dictionary<(string Policy, string Metric), Estimate> Deltas { get; } = new();
    /// <summary>Free text per policy (e.g. when it falls back).</summary>
    public Dictionary<string, string> Notes { get; } = new();
    /// <summary>Why a policy has no figures for some metrics ("no fleet figures (the fleet does not model it yet)").</summary>
    public Dictionary<string, string> Missing { get; } = new();

    public MetricSpec Metric(string key) => Metrics.First(m => m.Key == key);
    public bool Has(string policy, string metric) => Values.ContainsKey((policy, metric));
    public Estimate Value(string policy, string metric) => Values[(policy, metric)];

    /// <summary>a − b with a 95 % interval (exact for scenario metrics).</summary>
    public Estimate Diff(string metric, string a, string b)
    {
        var va = Value(a, metric);
        var vb = Value(b, metric);
        if (a == b) return Estimate.Exact(0);
        if (va.IsExact && vb.IsExact) return Estimate.Exact(va.Mean - vb.Mean);
        Estimate? da = a == Baseline ? Estimate.Exact(0) : Deltas.TryGetValue((a, metric), out var x) ? x : null;
        Estimate? db = b == Baseline ? Estimate.Exact(0) : Deltas.TryGetValue((b, metric), out var y) ? y : null;
        if (da is { } pa && db is { } pb)
        {
            double m = pa.Mean - pb.Mean, h = pa.HalfWidth + pb.HalfWidth;
            return new(m, m - h, m + h);
        }
        double mean = va.Mean - vb.Mean, half = va.HalfWidth + vb.HalfWidth;
        return new(mean, mean - half, mean + half);
    }

    /// <summary>−1: a is better (lower) with a CI that excludes 0; +1: worse; 0: statistically indistinguishable (or equal).</summary>
    public int Compare(string metric, string a, string b)
    {
        var d = Diff(metric, a, b);
        if (d.IsExact)
        {
            // exact scenario figures: equal as printed means equal (a claim must be visible in the table)
            var spec = Metric(metric);
            double x = Value(a, metric).Mean, y = Value(b, metric).Mean;
            return RelEqual(x, y) || spec.Format(x) == spec.Format(y) ? 0 : Math.Sign(d.Mean);
        }
        return d.BelowZero ? -1 : d.AboveZero ? 1 : 0;
    }

    /// <summary>Exact scenario numbers equal up to rounding noise.</summary>
    private static bool RelEqual(double x, double y) => Math.Abs(x - y) <= 1e-9 * Math.Max(1, Math.Max(Math.Abs(x), Math.Abs(y)));

    /// <summary>Metrics on which every policy of the list has a value.</summary>
    public IEnumerable<MetricSpec> Common(IEnumerable<string> policies) => Metrics.Where(m => policies.All(p => Has(p, m.Key)));

    /// <summary>Policies with a figure for every cost metric that any policy has (the ones rankings over all costs may use).</summary>
    public IReadOnlyList<string> Complete()
    {
        var costs = Metrics.Where(m => m.Cost && Policies.Any(p => Has(p, m.Key))).ToList();
        return Policies.Where(p => costs.All(m => Has(p, m.Key))).ToList();
    }
}

using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>
/// Exact accumulators of a fleet run: counts, sums and sums of squares as integers (<see cref="Int128"/>), so adding
/// servers in any order, on any thread, in any shard gives bit-identical totals. Paired differences against the baseline
/// (same server, same history) are accumulated per server, which is what makes their intervals tight.
/// </summary>
public sealed class FleetTally
{
    public FleetTally(IReadOnlyList<string> policies, int bins)
    {
        Policies = policies.ToArray();
        Bins = bins;
        int p = Policies.Length;
        Sum = new Int128[p, ServerOutcome.PolicyMetrics];
        SumSq = new Int128[p, ServerOutcome.PolicyMetrics];
        DiffSum = new Int128[p, ServerOutcome.PolicyMetrics];
        DiffSumSq = new Int128[p, ServerOutcome.PolicyMetrics];
        ServerSum = new Int128[ServerOutcome.ServerMetrics];
        ServerSumSq = new Int128[ServerOutcome.ServerMetrics];
        ModePatterns = new long[ServerOutcome.Modes];
        ModeFrames = new long[ServerOutcome.Modes];
        ModeLines = new long[ServerOutcome.Modes];
        Series = new long[p, bins];
        BaselineIndex = Array.IndexOf(Policies, HugeFault.Policies.RecoveryPolicies.Baseline);
    }

    public string[] Policies { get; }
    public int Bins { get; }
    /// <summary>Index of the baseline policy (<see cref="HugeFault.Policies.RecoveryPolicies.Baseline"/>) in <see cref="Policies"/>, or −1 (then no paired differences).</summary>
    public int BaselineIndex { get; }
    public long Servers;
    public long ServersTouched;
    public readonly Int128[,] Sum, SumSq, DiffSum, DiffSumSq;
    public readonly Int128[] ServerSum, ServerSumSq;
    public readonly long[] ModePatterns, ModeFrames, ModeLines;
    public readonly long[,] Series;

    /// <summary>Counts a fault-free server (all metrics zero).</summary>
    public void AddEmpty(long count = 1) => Servers += count;

    /// <summary>Adds one simulated server.</summary>
    public void Add(ServerOutcome o)
    {
        Servers++;
        if (!o.Touched) return;
        ServersTouched++;
        int m = BaselineIndex;
        for (int p = 0; o.HasPolicyData && p < Policies.Length; p++)
        {
            for (int k = 0; k < ServerOutcome.PolicyMetrics; k++)
            {
                long x = o.Policy[p, k];
                if (x != 0)
                {
                    Sum[p, k] += x;
                    SumSq[p, k] += (Int128)x * x;
                }
                if (m >= 0)
                {
                    long d = x - o.Policy[m, k];
                    if (d != 0)
                    {
                        DiffSum[p, k] += d;
                        DiffSumSq[p, k] += (Int128)d * d;
                    }
                }
            }
            for (int b = 0; b < Bins; b++) Series[p, b] += o.Series[p, b];
        }
        // (zeros skipped: most touched servers have faults but no pattern, and an Int128 square is not free)
        for (int k = 0; k < ServerOutcome.ServerMetrics; k++)
        {
            long x = o.Server[k];
            if (x == 0) continue;
            ServerSum[k] += x;
            ServerSumSq[k] += (Int128)x * x;
        }
        if (o.Server[(int)ServerMetric.UePatterns] == 0) return;
        for (int i = 0; i < ServerOutcome.Modes; i++)
        {
            ModePatterns[i] += o.ModePatterns[i];
            ModeFrames[i] += o.ModeFrames[i];
            ModeLines[i] += o.ModeLines[i];
        }
    }

    /// <summary>Adds another tally (same policies and bins): exact, associative and commutative.</summary>
    public void Merge(FleetTally other)
    {
        if (!other.Policies.SequenceEqual(Policies) || other.Bins != Bins)
            throw new ArgumentException("tallies of different policy lists or horizons cannot be merged");
        Servers += other.Servers;
        ServersTouched += other.ServersTouched;
        for (int p = 0; p < Policies.Length; p++)
        {
            for (int k = 0; k < ServerOutcome.PolicyMetrics; k++)
            {
                Sum[p, k] += other.Sum[p, k];
                SumSq[p, k] += other.SumSq[p, k];
                DiffSum[p, k] += other.DiffSum[p, k];
                DiffSumSq[p, k] += other.DiffSumSq[p, k];
            }
            for (int b = 0; b < Bins; b++) Series[p, b] += other.Series[p, b];
        }
        for (int k = 0; k < ServerOutcome.ServerMetrics; k++)
        {
            ServerSum[k] += other.ServerSum[k];
            ServerSumSq[k] += other.ServerSumSq[k];
        }
        for (int i = 0; i < ServerOutcome.Modes; i++)
        {
            ModePatterns[i] += other.ModePatterns[i];
            ModeFrames[i] += other.ModeFrames[i];
            ModeLines[i] += other.ModeLines[i];
        }
    }

    /// <summary>Mean per server and its 95 % interval from a sum and a sum of squares over <see cref="Servers"/>.</summary>
    public MeanEstimate Estimate(Int128 sum, Int128 sumSq)
    {
        long n = Servers;
        if (n == 0) return new(0, 0, 0);
        double mean = (double)sum / n;
        double var = n > 1 ? Math.Max(0, ((double)sumSq - (double)sum * (double)sum / n) / (n - 1)) : 0;
        double half = 1.959963984540054 * Math.Sqrt(var / n);
        return new(mean, mean - half, mean + half);
    }

    public MeanEstimate PolicyMean(int p, PolicyMetric m) => Estimate(Sum[p, (int)m], SumSq[p, (int)m]);
    public MeanEstimate PolicyDiff(int p, PolicyMetric m) => Estimate(DiffSum[p, (int)m], DiffSumSq[p, (int)m]);
    public MeanEstimate ServerMean(ServerMetric m) => Estimate(ServerSum[(int)m], ServerSumSq[(int)m]);

    /// <summary>True when every accumulator equals <paramref name="other"/>'s.</summary>
    public bool SameAs(FleetTally other)
    {
        if (!other.Policies.SequenceEqual(Policies) || other.Bins != Bins || Servers != other.Servers || ServersTouched != other.ServersTouched) return false;
        static bool Eq<T>(T[,] a, T[,] b) => a.Cast<T>().SequenceEqual(b.Cast<T>());
        return Eq(Sum, other.Sum) && Eq(SumSq, other.SumSq) && Eq(DiffSum, other.DiffSum) && Eq(DiffSumSq, other.DiffSumSq)
               && ServerSum.SequenceEqual(other.ServerSum) && ServerSumSq.SequenceEqual(other.ServerSumSq)
               && ModePatterns.SequenceEqual(other.ModePatterns) && ModeFrames.SequenceEqual(other.ModeFrames)
               && ModeLines.SequenceEqual(other.ModeLines) && Eq(Series, other.Series);
    }
}

/// <summary>A per-server mean with a normal-approximation 95 % interval.</summary>
public readonly record struct MeanEstimate(double Mean, double Lower, double Upper)
{
    /// <summary>The estimate scaled (e.g. per server → per 1,000 VM-years).</summary>
    public MeanEstimate Scale(double k) => new(Mean * k, Lower * k, Upper * k);
    public ConfidenceInterval Ci => new(Lower, Upper);
}

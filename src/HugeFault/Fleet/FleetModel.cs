using HugeFault.Fleet.Dram;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>Per-policy metrics of one server (indices into <see cref="ServerOutcome.Policy"/>). All are exact integers.</summary>
public enum PolicyMetric
{
    /// <summary>Stranded capacity integrated over time, in 4 KiB-page-hours.</summary>
    StrandedPageHours = 0,
    /// <summary>Stranded 4 KiB pages at the end of the mission.</summary>
    StrandedPagesEnd,
    /// <summary>UE events that reached the kernel (scrub or demand).</summary>
    UeEvents,
    /// <summary>Of those, consumed (action-required) ones.</summary>
    ConsumedUes,
    /// <summary>VMs killed.</summary>
    VmsKilled,
    /// <summary>Guest memory the guests lost access to, bytes.</summary>
    GuestLostBytes,
    /// <summary>Of the lost memory, bytes that were not corrupted (good data lost).</summary>
    GoodDataLostBytes,
    /// <summary>Largest extra memory needed at once for recovery, bytes.</summary>
    ExtraPeakBytes,
    /// <summary>Largest extra host page-table memory at once, bytes.</summary>
    PageTablePeakBytes,
    /// <summary>VMs live-migrated off the server (for DIMM replacement).</summary>
    LiveMigrations,
    /// <summary>1 GiB pool pages lost (dissolved, converted or doomed) at the end.</summary>
    HugePagesLost,
    /// <summary>Poisoned lines repaired in place.</summary>
    Repairs,
    /// <summary>Events the policy handed to its fallback.</summary>
    Fallbacks,
    /// <summary>1 when the server saw at least one UE event.</summary>
    ServersWithUeEvent,
}

/// <summary>Policy-independent metrics of one server.</summary>
public enum ServerMetric
{
    /// <summary>DRAM faults.</summary>
    Faults = 0,
    /// <summary>Uncorrectable patterns (fault-level UEs, fault-model.md §1c) including deposited poison.</summary>
    UePatterns,
    /// <summary>1 when a DRAM uncorrectable pattern existed (fault-level "server with a UE").</summary>
    ServersWithUe,
    /// <summary>DIMM replacements.</summary>
    DimmReplacements,
    /// <summary>UE sites in host kernel memory (same for every policy).</summary>
    KernelUes,
    /// <summary>Sites = (pattern, 1 GiB frame) pairs.</summary>
    Sites,
}

/// <summary>The outcome of one server, written by <see cref="FleetServerSimulator"/> into reused arrays.</summary>
public sealed class ServerOutcome
{
    public const int PolicyMetrics = 14;
    public const int ServerMetrics = 6;
    /// <summary>Modes plus one "deposited" bucket.</summary>
    public const int Modes = DramFaultModes.Count + 1;

    public ServerOutcome(int policies, int bins)
    {
        Policy = new long[policies, PolicyMetrics];
        Series = new long[policies, bins];
        Server = new long[ServerMetrics];
        ModePatterns = new long[Modes];
        ModeFrames = new long[Modes];
        ModeLines = new long[Modes];
    }

    public long Index;
    public readonly long[,] Policy;
    /// <summary>Stranded capacity integrated over each month, 4 KiB-page-hours, per policy.</summary>
    public readonly long[,] Series;
    public readonly long[] Server;
    public readonly long[] ModePatterns, ModeFrames, ModeLines;
    /// <summary>True when anything is non-zero (the server had a fault or deposited poison).</summary>
    public bool Touched;

    /// <summary>True when some policy metric may be non-zero (the server had a UE site); false means all policy rows are zero.</summary>
    public bool HasPolicyData;

    public void Clear()
    {
        Array.Clear(Policy);
        Array.Clear(Series);
        Array.Clear(Server);
        Array.Clear(ModePatterns);
        Array.Clear(ModeFrames);
        Array.Clear(ModeLines);
        Touched = false;
        HasPolicyData = false;
    }
}

/// <summary>
/// Everything derived once from a valid <see cref="FleetConfig"/>: rates, thresholds, tables, the address map. Immutable
/// and shared by all worker threads.
/// </summary>
public sealed class FleetModel
{
    public FleetModel(FleetConfig config)
    {
        Config = config;
        var s = config.Server;
        Fit = FitProfile.FromName(config.Faults.Profile)!;
        DimmModel = config.DimmModel(Fit);
        Layout = new DramAddressLayout(s.DimmGeometry);
        Sampler = new RankFaultSampler(DimmModel);
        Patterns = new UePatternFinder(DimmModel);
        Map = new FleetAddressMap(s);
        Policies = config.Policies.ToArray();
        Tables = Policies.Select(p => EffectTable.For(p, config.ParametersOf(p))).ToArray();
        Fate = new GuestFate(config.Guest, config.Workload.TouchesPerLineHour);
        Dimms = s.Dimms;
        Frames = s.Frames1G;
        KernelFrames = Math.Min(Frames, config.Workload.KernelGiB);
        UserFrames = Math.Min(Frames - KernelFrames, config.Workload.User4kGiB);
        PoolStart = KernelFrames + UserFrames;
        PoolFrames = Frames - PoolStart;
        Hours = config.Hours;
        DimmFaultMean = DimmModel.ExpectedFaultsPerTrial;
        DepositedMean = config.Faults.DepositedPerServerYear * config.Years;
        double p0Dimm = ZeroProbability(DimmFaultMean, config.Faults.Heterogeneity, config.Faults.HeterogeneityParameter);
        ZeroProbabilityPerServer = Math.Pow(p0Dimm, Dimms) * Math.Exp(-DepositedMean);
        ZeroThreshold = ToThreshold(ZeroProbabilityPerServer);
        DimmZeroThreshold = ToThreshold(p0Dimm);
        DepositedZeroThreshold = ToThreshold(Math.Exp(-DepositedMean));
        var w = config.Workload;
        VmSizes = w.VmSizes.Select(v => v.GiB).ToArray();
        VmSizeTable = new AliasTable(w.VmSizes.Select(v => v.Weight).ToArray());
        MaxVmFrames = VmSizes.Max();
        LifetimeHours = w.VmLifetimeDays * 24.0;
        MeanConcurrentVms = config.Workload.PoolOccupancy * PoolFrames / w.MeanVmGiB;
        ArrivalRatePerHour = MeanConcurrentVms / LifetimeHours;
        Bins = Math.Max(1, (int)Math.Ceiling(config.Years * 12 - 1e-9));
        LineMask = Map.LineBits >= 64 ? ulong.MaxValue : (1UL << Map.LineBits) - 1;
    }

    public FleetConfig Config { get; }
    public FitProfile Fit { get; }
    public DramRankModel DimmModel { get; }
    public DramAddressLayout Layout { get; }
    public RankFaultSampler Sampler { get; }
    public UePatternFinder Patterns { get; }
    public FleetAddressMap Map { get; }
    /// <summary>The policies, in the order of <see cref="FleetConfig.Policies"/>.</summary>
    public string[] Policies { get; }
    /// <summary>What each policy does per event class, from its kernel model (filled as the run meets the classes).</summary>
    public EffectTable[] Tables { get; }
    /// <summary>The guest model's rules for a VM's death.</summary>
    internal GuestFate Fate { get; }
    public int Dimms { get; }
    public int Frames { get; }
    public int KernelFrames { get; }
    public int UserFrames { get; }
    public int PoolStart { get; }
    public int PoolFrames { get; }
    public double Hours { get; }
    /// <summary>Expected faults of one DIMM over the mission at multiplier 1.</summary>
    public double DimmFaultMean { get; }
    public double DepositedMean { get; }
    /// <summary>P(a server sees no fault and no deposited poison), heterogeneity integrated out.</summary>
    public double ZeroProbabilityPerServer { get; }
    /// <summary>ZeroProbabilityPerServer · 2^64: a server whose first draw is below it costs nothing more.</summary>
    public ulong ZeroThreshold { get; }
    public int[] VmSizes { get; }
    public AliasTable VmSizeTable { get; }
    public int MaxVmFrames { get; }
    public double LifetimeHours { get; }
    /// <summary>Mean VMs on a server (the VM-years denominator: servers × years × this).</summary>
    public double MeanConcurrentVms { get; }
    public double ArrivalRatePerHour { get; }
    /// <summary>Monthly bins of the stranded-capacity series.</summary>
    public int Bins { get; }
    public ulong LineMask { get; }

    private static ulong ToThreshold(double p) => p >= 1.0 ? ulong.MaxValue : (ulong)(p * 18446744073709551616.0);

    /// <summary>P(a DIMM has no fault)·2^64.</summary>
    public ulong DimmZeroThreshold { get; }

    /// <summary>P(no deposited poison)·2^64.</summary>
    public ulong DepositedZeroThreshold { get; }

    /// <summary>
    /// A DIMM's multiplier given that the DIMM has at least one fault: density ∝ f(m)(1 − e^{−Λm}). Proposed from the
    /// size-biased law m·f(m) (lognormal(μ+σ², σ) or Gamma(k+1, 1/k)) and accepted with probability (1 − e^{−Λm})/(Λm) ≤ 1,
    /// which is close to 1 for the small Λ of real DIMMs: exact, and no multiplier is drawn for fault-free DIMMs.
    /// </summary>
    public double DrawMultiplierGivenFault(ref Xoshiro256StarStar rng)
    {
        var f = Config.Faults;
        double lambda = DimmFaultMean;
        for (int guard = 0; guard < 1_000_000; guard++)
        {
            double m = f.Heterogeneity switch
            {
                Heterogeneity.LogNormal => Distributions.LogNormal(ref rng, 0.5 * f.HeterogeneityParameter * f.HeterogeneityParameter, f.HeterogeneityParameter),
                Heterogeneity.Gamma => Distributions.Gamma(ref rng, f.HeterogeneityParameter + 1.0, 1.0 / f.HeterogeneityParameter),
                _ => 1.0,
            };
            double x = lambda * m;
            double accept = x < 1e-12 ? 1.0 : -double.ExpM1(-x) / x;
            if (rng.NextDouble() < accept) return m;
        }
        return 1.0;
    }

    /// <summary>Poisson(<paramref name="mean"/>) conditioned on ≥ 1, by inversion from k = 1 (small means) or rejection.</summary>
    public static long ZeroTruncatedPoisson(ref Xoshiro256StarStar rng, double mean)
    {
        if (mean <= 0) return 1;
        if (mean > 1.0)
        {
            while (true)
            {
                long k = Distributions.Poisson(ref rng, mean);
                if (k > 0) return k;
            }
        }
        double p1 = -double.ExpM1(-mean); // P(N ≥ 1)
        double u = rng.NextDouble() * p1;
        double pk = Math.Exp(-mean) * mean; // P(N = 1)
        double cdf = pk;
        long n = 1;
        while (u >= cdf && n < 10_000)
        {
            n++;
            pk *= mean / n;
            double next = cdf + pk;
            if (next == cdf) break;
            cdf = next;
        }
        return n;
    }

    /// <summary>Draws a DIMM's mean-1 rate multiplier.</summary>
    public double DrawMultiplier(ref Xoshiro256StarStar rng)
    {
        var f = Config.Faults;
        return f.Heterogeneity switch
        {
            Heterogeneity.LogNormal => Distributions.LogNormal(ref rng, -0.5 * f.HeterogeneityParameter * f.HeterogeneityParameter, f.HeterogeneityParameter),
            Heterogeneity.Gamma => Distributions.Gamma(ref rng, f.HeterogeneityParameter, 1.0 / f.HeterogeneityParameter),
            _ => 1.0,
        };
    }

    /// <summary>E[exp(−Λ·M)] for the mean-1 multiplier M: P(a DIMM has no fault).</summary>
    public static double ZeroProbability(double lambda, Heterogeneity h, double parameter)
    {
        switch (h)
        {
            case Heterogeneity.Gamma:
                return Math.Pow(1.0 + lambda / parameter, -parameter);
            case Heterogeneity.LogNormal:
            {
                // Simpson's rule over the standard normal on [-12, 12].
                double mu = -0.5 * parameter * parameter;
                const int n = 4000;
                const double a = -12, b = 12;
                double hstep = (b - a) / n, sum = 0;
                for (int i = 0; i <= n; i++)
                {
                    double z = a + i * hstep;
                    double fz = Math.Exp(-0.5 * z * z) / Math.Sqrt(2 * Math.PI) * Math.Exp(-lambda * Math.Exp(mu + parameter * z));
                    sum += fz * (i == 0 || i == n ? 1 : i % 2 == 1 ? 4 : 2);
                }
                return Math.Min(1.0, sum * hstep / 3);
            }
            default:
                return Math.Exp(-lambda);
        }
    }
}

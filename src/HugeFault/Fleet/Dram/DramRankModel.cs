using System.Numerics;

namespace HugeFault.Fleet.Dram;

/// <summary>Error-correcting code protecting each codeword of the rank.</summary>
public enum EccScheme : byte
{
    /// <summary>No ECC: every fault that exists is both an uncorrectable and an undetected (silent) error.</summary>
    None = 0,
    /// <summary>(72,64) SEC-DED per beat: corrects one bit, detects two, may miss or miscorrect three or more.</summary>
    SecDed = 1,
    /// <summary>Chipkill / SDDC: one 8-bit symbol per device per codeword (2 beats of a x4 device); single-symbol correct, double-symbol detect.</summary>
    Chipkill = 2,
    /// <summary>Intel ADDDC: Chipkill, and the device of the first permanent multi-bit fault is spared (mapped out) at the next patrol scrub, after which SDDC again covers the remaining devices.</summary>
    Adddc = 3,
}

/// <summary>ECC behaviour knobs.</summary>
/// <param name="Scheme">The code.</param>
/// <param name="WeakenedProbability">
/// Per-fault probability that a single-device multi-bit fault is uncorrectable under Chipkill/ADDDC on its own
/// (the "weakened platform ECC" of Li et al. SC'22, fault-model.md §6.4); the calibration lever. 0 = textbook SDDC.
/// </param>
/// <param name="LaneFaultIsMultiChip">
/// Treat <see cref="DramFaultMode.MultiRank"/> (lane/bus) faults as corrupting several devices of a codeword, so one
/// is an uncorrectable error by itself under every code. Default false: as in FaultSim, a lane fault is one chip
/// position in every rank, i.e. one symbol per codeword, which Chipkill corrects.
/// </param>
public sealed record EccOptions(EccScheme Scheme, double WeakenedProbability = 0.0, bool LaneFaultIsMultiChip = false);

/// <summary>
/// Everything a rank-level trial needs: geometry, fault rates, mission time, patrol-scrub interval and ECC.
/// Built by front ends, checked with <see cref="Validate"/>, then handed to <see cref="RankMonteCarlo"/>.
/// </summary>
/// <param name="Geometry">Devices and address fields.</param>
/// <param name="Fit">FIT per device by mode.</param>
/// <param name="FitScale">Global multiplier on every rate.</param>
/// <param name="Years">Mission time per trial, in years of 8760 hours.</param>
/// <param name="ScrubHours">Patrol-scrub period: a transient fault lives until the next scrub boundary (multiples of this from the trial start).</param>
/// <param name="Ecc">Code and knobs.</param>
/// <param name="RowClusterRows">Rows in one sub-array for <see cref="DramFaultMode.RowCluster"/> faults (power of two; clamped to the bank).</param>
public sealed record DramRankModel(
    DramGeometry Geometry,
    FitProfile Fit,
    double FitScale,
    double Years,
    double ScrubHours,
    EccOptions Ecc,
    int RowClusterRows = 512)
{
    /// <summary>Hours per year used throughout (365 days; 7 years = 61,320 h as in fault-model.md §6.8).</summary>
    public const double HoursPerYear = 8760.0;

    /// <summary>Upper bound on the expected faults per trial; beyond it the per-thread fault buffers would grow large.</summary>
    public const double MaxExpectedFaultsPerTrial = 500.0;

    /// <summary>Mission time in hours.</summary>
    public double Hours => Years * HoursPerYear;

    /// <summary>Expected faults per trial: devices × total FIT × scale × 10^-9 × hours.</summary>
    public double ExpectedFaultsPerTrial => Geometry.Devices * Fit.Total * FitScale * 1e-9 * Hours;

    /// <summary>Closed form of P(at least one fault in a trial) = 1 − exp(−expected faults); the Monte Carlo must reproduce it.</summary>
    public double ClosedFormFaultProbability => -double.ExpM1(-ExpectedFaultsPerTrial);

    /// <summary>All problems with the model at once (empty when valid).</summary>
    public IReadOnlyList<DramConfigError> Validate()
    {
        var errors = new List<DramConfigError>(Geometry.Validate());
        if (!double.IsFinite(FitScale) || FitScale <= 0)
            errors.Add(new(nameof(FitScale), $"must be a positive number (got {FitScale}); 1 keeps the published rates"));
        if (!double.IsFinite(Years) || Years <= 0 || Years > 100)
            errors.Add(new(nameof(Years), $"must be a positive number of years up to 100 (got {Years})"));
        if (!double.IsFinite(ScrubHours) || ScrubHours <= 0)
            errors.Add(new(nameof(ScrubHours), $"must be a positive number of hours (got {ScrubHours}); 24 is a typical patrol-scrub period"));
        if (!(Ecc.WeakenedProbability >= 0 && Ecc.WeakenedProbability <= 1))
            errors.Add(new(nameof(EccOptions.WeakenedProbability), $"must be a probability in [0, 1] (got {Ecc.WeakenedProbability})"));
        if (RowClusterRows < 1 || !BitOperations.IsPow2(RowClusterRows))
            errors.Add(new(nameof(RowClusterRows), $"must be a power of two (got {RowClusterRows})"));
        if (errors.Count == 0 && ExpectedFaultsPerTrial > MaxExpectedFaultsPerTrial)
            errors.Add(new(nameof(FitScale),
                $"gives {ExpectedFaultsPerTrial:0.#} expected faults per trial, above the supported {MaxExpectedFaultsPerTrial}; lower the FIT scale, years or ranks"));
        return errors;
    }
}

namespace HugeFault.Fleet.Dram;

/// <summary>
/// Fault rates per DRAM device by mode, in FIT (faults per 10^9 device-hours), split into transient and permanent.
/// Immutable; build custom profiles with <see cref="Create"/>.
/// </summary>
public sealed class FitProfile
{
    private readonly double[] _transient;
    private readonly double[] _permanent;

    private FitProfile(string name, double[] transient, double[] permanent)
    {
        Name = name;
        _transient = transient;
        _permanent = permanent;
    }

    /// <summary>Profile name as shown in reports (<c>jaguar</c>, <c>ddr4</c>, or a custom name).</summary>
    public string Name { get; }

    /// <summary>Transient FIT of <paramref name="mode"/>.</summary>
    public double Transient(DramFaultMode mode) => _transient[(int)mode];

    /// <summary>Permanent FIT of <paramref name="mode"/>.</summary>
    public double Permanent(DramFaultMode mode) => _permanent[(int)mode];

    /// <summary>FIT of <paramref name="mode"/> with the given persistence.</summary>
    public double Fit(DramFaultMode mode, bool transient) => transient ? Transient(mode) : Permanent(mode);

    /// <summary>Sum of transient FIT over modes.</summary>
    public double TotalTransient => _transient.Sum();

    /// <summary>Sum of permanent FIT over modes.</summary>
    public double TotalPermanent => _permanent.Sum();

    /// <summary>Total FIT per device.</summary>
    public double Total => TotalTransient + TotalPermanent;

    /// <summary>
    /// Builds a profile from per-mode rates indexed by <see cref="DramFaultMode"/> (missing trailing modes are 0).
    /// Returns null when a rate is negative or not finite, or all are zero.
    /// </summary>
    public static FitProfile? Create(string name, ReadOnlySpan<double> transient, ReadOnlySpan<double> permanent)
    {
        if (transient.Length > DramFaultModes.Count || permanent.Length > DramFaultModes.Count) return null;
        var t = new double[DramFaultModes.Count];
        var p = new double[DramFaultModes.Count];
        transient.CopyTo(t);
        permanent.CopyTo(p);
        double total = 0;
        foreach (double x in t.Concat(p))
        {
            if (!double.IsFinite(x) || x < 0) return null;
            total += x;
        }
        return total > 0 ? new FitProfile(name, t, p) : null;
    }

    /// <summary>
    /// Jaguar (DDR2, ORNL; Sridharan and Liberty SC'12), FaultSim's <c>FM_JAGUAR</c>, fault-model.md §1a: 19.2 FIT
    /// transient + 46.9 FIT permanent = 66.1 FIT per device. No row-cluster mode.
    /// </summary>
    public static FitProfile Jaguar { get; } = new("jaguar",
        //   bit   word  col   row  cluster bank  nbank nrank
        [14.2, 1.4, 1.4, 0.2, 0.0, 0.8, 0.3, 0.9],
        [18.6, 0.3, 5.6, 8.2, 0.0, 10.0, 1.4, 2.8]);

    /// <summary>
    /// DDR4 field data (lpharch/DRAM_FAULT_SIM <c>FITrate.csv</c>, fault-model.md §1b), 46.47 + 62.98 = 109.45 FIT per
    /// device, mapped onto footprint modes as follows (the coarse categories are those of §1b):
    /// <list type="bullet">
    /// <item>single bit → <see cref="DramFaultMode.Bit"/>;</item>
    /// <item>column (sense amp, CSL column, column decoder) → <see cref="DramFaultMode.Column"/>;</item>
    /// <item>row (local wordline, two clusters, consecutive rows) → <see cref="DramFaultMode.Row"/> (a handful of
    /// adjacent rows treated as one: their footprint is a few rows of one bank, far below a sub-array);</item>
    /// <item>row cluster / sub-array (lwl_sel, sub-array row decoder) → <see cref="DramFaultMode.RowCluster"/>;</item>
    /// <item>bank via CSL (single_csl_bank, multi CSLs), single bank, and multi-column decoder →
    /// <see cref="DramFaultMode.Bank"/>: these faults spread over many columns of every row of one bank, and a
    /// whole-bank footprint is the smallest mask that covers them (conservative for single-CSL faults, which are
    /// closer to one column);</item>
    /// <item>multi-bank (incl. bank_control) → <see cref="DramFaultMode.MultiBank"/>;
    /// multi-rank → <see cref="DramFaultMode.MultiRank"/>;</item>
    /// <item>word: no DDR4 category, 0.</item>
    /// </list>
    /// </summary>
    public static FitProfile Ddr4Field { get; } = new("ddr4",
        //   bit    word  col   row   cluster bank(csl+single+mcd)   nbank nrank
        [29.33, 0.0, 8.17, 1.16, 2.28, 4.27 + 0.39 + 0.34, 0.27, 0.26],
        [45.90, 0.0, 2.85, 9.19, 1.49, 0.72 + 0.37 + 0.03, 1.12, 1.31]);

    /// <summary>Looks up a built-in profile by CLI name (<c>jaguar</c> or <c>ddr4</c>), case-insensitively.</summary>
    public static FitProfile? FromName(string name) => name.ToLowerInvariant() switch
    {
        "jaguar" => Jaguar,
        "ddr4" => Ddr4Field,
        _ => null,
    };
}

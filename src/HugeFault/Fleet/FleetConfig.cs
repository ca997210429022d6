using System.Numerics;
using HugeFault.Fleet.Dram;

namespace HugeFault.Fleet;

/// <summary>Per-DIMM fault-rate heterogeneity: a mean-1 multiplier drawn once per DIMM (fault-model.md §6.1).</summary>
public enum Heterogeneity : byte
{
    /// <summary>Every DIMM has the profile's rates.</summary>
    None = 0,
    /// <summary>exp(N(−σ²/2, σ²)): mean 1, heavy right tail (default σ = 1.5).</summary>
    LogNormal = 1,
    /// <summary>Gamma(k, 1/k): mean 1; small shapes (default 0.3) put most faults on few DIMMs.</summary>
    Gamma = 2,
}

/// <summary>When the fleet replaces a DIMM (fault-model.md §6.7).</summary>
public enum ReplacementPolicy : byte
{
    /// <summary>DIMMs are never replaced.</summary>
    Never = 0,
    /// <summary>After the DIMM's K-th UE-capable pattern is detected (K = 1: the Google-style "first UE" policy).</summary>
    AfterUes = 1,
}

/// <summary>The server hardware: sockets, channels, DIMMs, ranks, devices, geometry, ECC and the physical-address map.</summary>
public sealed record FleetServerConfig
{
    public int Sockets { get; init; } = 2;
    public int ChannelsPerSocket { get; init; } = 8;
    public int DimmsPerChannel { get; init; } = 1;
    public int RanksPerDimm { get; init; } = 2;
    /// <summary>DQs per device (4 or 8).</summary>
    public int ChipWidth { get; init; } = 4;
    /// <summary>Devices per rank including check devices (18 for x4, 9 for x8).</summary>
    public int ChipsPerRank { get; init; } = 18;
    public int Banks { get; init; } = 16;
    public int Rows { get; init; } = 262144;
    /// <summary>Column addresses (beats of one device) per row: 1 K for a 16 Gb x4 DDR4 device.</summary>
    public int Columns { get; init; } = 1024;
    public EccScheme Ecc { get; init; } = EccScheme.Chipkill;
    /// <summary>Weakened-ECC knob: P(a single-device multi-bit fault is uncorrectable on its own). Calibrated, see docs/fleet.md.</summary>
    public double WeakenedEcc { get; init; } = 0.07;
    public bool LaneFaultIsMultiChip { get; init; }
    /// <summary>Line-address fields from the lowest physical-address bit upwards (after the 6-bit line offset).</summary>
    public IReadOnlyList<string> AddressOrder { get; init; } = ["channel", "column", "bank", "rank", "row", "dimm", "socket"];
    /// <summary>XOR the bank bits with the lowest row bits (bank hashing).</summary>
    public bool XorBankWithRow { get; init; } = true;

    /// <summary>Data devices per rank (16 of 18 for x4, 8 of 9 for x8: the rest hold check bits).</summary>
    public int DataChips => ChipsPerRank * 8 / 9;
    /// <summary>Beats of one device that make up a 64-byte cacheline.</summary>
    public int BeatsPerLine => 512 / Math.Max(1, DataChips * ChipWidth);
    public int Dimms => Sockets * ChannelsPerSocket * DimmsPerChannel;
    public ulong RankBytes => (ulong)Banks * (ulong)Rows * (ulong)(Columns / Math.Max(1, BeatsPerLine)) * 64UL;
    public ulong DimmBytes => RankBytes * (ulong)RanksPerDimm;
    public ulong MemoryBytes => DimmBytes * (ulong)Dimms;
    public int Frames1G => (int)(MemoryBytes >> 30);
    public DramGeometry DimmGeometry => new(ChipsPerRank, ChipWidth, RanksPerDimm, Banks, Rows, Columns);
}

/// <summary>Fault arrivals, patrol scrub, deposited poison and DIMM replacement.</summary>
public sealed record FleetFaultConfig
{
    /// <summary>FIT profile name: ddr4 (default) or jaguar.</summary>
    public string Profile { get; init; } = "ddr4";
    public double FitScale { get; init; } = 1.0;
    public Heterogeneity Heterogeneity { get; init; } = Heterogeneity.LogNormal;
    /// <summary>σ of the lognormal, or the gamma shape.</summary>
    public double HeterogeneityParameter { get; init; } = 1.5;
    public double ScrubHours { get; init; } = 24.0;
    /// <summary>Act on patrol-scrub UEs (action-optional memory_failure()); false = only consumed UEs reach the kernel.</summary>
    public bool ScrubReportsUe { get; init; } = true;
    /// <summary>Poison deposited from outside DRAM (dirty poisoned lines written back), events per server-year.</summary>
    public double DepositedPerServerYear { get; init; } = 0.002;
    public ReplacementPolicy Replacement { get; init; } = ReplacementPolicy.AfterUes;
    public int ReplaceAfterUes { get; init; } = 1;
    public double RepairDelayHours { get; init; } = 72.0;
}

/// <summary>Host memory layout and the VM workload on the 1 GiB hugetlb pool.</summary>
public sealed record FleetWorkloadConfig
{
    public int KernelGiB { get; init; } = 16;
    /// <summary>Memory used by 4 KiB-page users (host daemons, VMM overheads).</summary>
    public int User4kGiB { get; init; } = 48;
    /// <summary>Target fraction of the hugetlb pool held by VMs.</summary>
    public double PoolOccupancy { get; init; } = 0.85;
    /// <summary>VM sizes in GiB with weights.</summary>
    public IReadOnlyList<(int GiB, double Weight)> VmSizes { get; init; } = [(4, 0.30), (8, 0.30), (16, 0.20), (32, 0.10), (64, 0.07), (128, 0.03)];
    /// <summary>Mean VM lifetime (exponential), days.</summary>
    public double VmLifetimeDays { get; init; } = 30.0;
    /// <summary>Demand reads of one cacheline of a VM's memory, per hour (times the VM's hotness).</summary>
    public double TouchesPerLineHour { get; init; } = 0.004;
    /// <summary>σ of the per-VM lognormal hotness multiplier (mean 1).</summary>
    public double HotnessSigma { get; init; } = 1.0;
    /// <summary>Host page-table mappings of each guest page (the VMM's, plus e.g. a vhost-user backend's): a policy's page-table cost is paid per mapping.</summary>
    public int MappingsPerPage { get; init; } = 1;

    public double MeanVmGiB
    {
        get
        {
            double w = 0, s = 0;
            foreach (var (g, x) in VmSizes) { w += x; s += g * x; }
            return w > 0 ? s / w : 0;
        }
    }
}

/// <summary>
/// The guests: what the VM model (<see cref="Virt.Vm"/>, <see cref="Virt.GuestConfig"/>) needs to decide a VM's fate and
/// cannot know about a fleet. How a policy's kernel model treats the guest's memory comes from the policy itself
/// (<see cref="EffectTable"/>); these are the guest OS's own properties. Defaults: the VM model's.
/// </summary>
public sealed record FleetGuestConfig
{
    private static readonly Virt.GuestConfig VmModel = new();

    /// <summary>P(a guest page holds guest-kernel memory): a machine check there panics the guest (<see cref="Virt.GuestConfig.KernelFraction"/>).</summary>
    public double GuestKernelFraction { get; init; } = VmModel.KernelFraction;
    /// <summary>A what-if budget: more machine checks than this within <see cref="MceWindowSeconds"/> panic the guest; null (the default, as in Linux) = none (<see cref="Virt.GuestConfig.MaxMces"/>).</summary>
    public int? MaxMces { get; init; } = VmModel.MaxMces;
    public double MceWindowSeconds { get; init; } = VmModel.MceWindowNs / 1e9;
    /// <summary>Fraction of guests that accept that the host rewrites poisoned lines of their memory (64 B lost, zeroed).</summary>
    public double EnlightenedFraction { get; init; } = 0.25;
}

/// <summary>A whole fleet study: immutable, checked with <see cref="Validate"/>.</summary>
public sealed record FleetConfig
{
    public FleetServerConfig Server { get; init; } = new();
    public FleetFaultConfig Faults { get; init; } = new();
    public FleetWorkloadConfig Workload { get; init; } = new();
    public FleetGuestConfig Guest { get; init; } = new();
    public long Servers { get; init; } = 100_000;
    public double Years { get; init; } = 1.0;

    /// <summary>Longest mission a run may simulate, and the monthly bins of its time series.</summary>
    public const double MaxYears = 20;
    public const int MaxBins = (int)MaxYears * 12;
    public ulong Seed { get; init; } = 1;
    public IReadOnlyList<string> Policies { get; init; } = FleetPolicies.Names;
    /// <summary>Parameters of each policy's kernel model (<c>policy_params.NAME.KEY</c>), passed as they are.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> PolicyParams { get; init; } = new Dictionary<string, IReadOnlyDictionary<string, string>>();

    /// <summary>The kernel-model parameters of <paramref name="policy"/> (none: the policy's defaults).</summary>
    public IReadOnlyDictionary<string, string> ParametersOf(string policy) =>
        PolicyParams.TryGetValue(policy, out var p) ? p : new Dictionary<string, string>();

    public double Hours => Years * DramRankModel.HoursPerYear;
    public int PoolFrames => Server.Frames1G - Workload.KernelGiB - Workload.User4kGiB;

    /// <summary>The DIMM as a rank-level model: one DIMM = one trial of the rank simulator over the mission.</summary>
    public DramRankModel DimmModel(FitProfile fit) => new(Server.DimmGeometry, fit, Faults.FitScale, Years, Faults.ScrubHours,
        new EccOptions(Server.Ecc, Server.WeakenedEcc, Server.LaneFaultIsMultiChip));

    /// <summary>All problems at once; each names the YAML key path (e.g. <c>server.banks</c>) and the fix.</summary>
    public IReadOnlyList<FleetConfigError> Validate()
    {
        var e = new List<FleetConfigError>();
        var s = Server;
        void Pow2(string path, int v, int max)
        {
            if (v < 1 || v > max || !BitOperations.IsPow2(v)) e.Add(new(path, $"must be a power of two between 1 and {max} (got {v})"));
        }
        Pow2("server.sockets", s.Sockets, 8);
        Pow2("server.channels_per_socket", s.ChannelsPerSocket, 16);
        Pow2("server.dimms_per_channel", s.DimmsPerChannel, 4);
        Pow2("server.ranks_per_dimm", s.RanksPerDimm, 8);
        Pow2("server.banks", s.Banks, 64);
        Pow2("server.rows", s.Rows, 1 << 20);
        Pow2("server.columns", s.Columns, 1 << 14);
        if (s.ChipWidth is not (4 or 8)) e.Add(new("server.chip_width", $"must be 4 or 8 (got {s.ChipWidth})"));
        if (!(s.ChipWidth == 4 && s.ChipsPerRank == 18) && !(s.ChipWidth == 8 && s.ChipsPerRank == 9))
            e.Add(new("server.chips_per_rank", $"must be 18 for x4 or 9 for x8 devices (got {s.ChipsPerRank} with x{s.ChipWidth})"));
        else if (s.Columns < s.BeatsPerLine)
            e.Add(new("server.columns", $"must be at least {s.BeatsPerLine} (one cacheline)"));
        if (!(s.WeakenedEcc >= 0 && s.WeakenedEcc <= 1)) e.Add(new("server.weakened_ecc", $"must be a probability in [0, 1] (got {s.WeakenedEcc})"));
        var known = new[] { "channel", "column", "bank", "rank", "row", "dimm", "socket" };
        foreach (var f in s.AddressOrder)
            if (!known.Contains(f)) e.Add(new("server.address_map.order", $"unknown field '{f}'; use {string.Join(", ", known)}"));
        foreach (var f in known)
            if (s.AddressOrder.Count(x => x == f) != 1) e.Add(new("server.address_map.order", $"must list '{f}' exactly once"));
        if (e.Count == 0)
        {
            ulong bytes = s.MemoryBytes;
            if (bytes < (1UL << 30) || bytes > (1UL << 44))
                e.Add(new("server", $"gives {bytes >> 30} GiB per server; must be between 1 GiB and 16 TiB"));
            else if (PoolFrames < 1)
                e.Add(new("workload.kernel_gib", $"kernel + 4 KiB users ({Workload.KernelGiB} + {Workload.User4kGiB} GiB) leave no 1 GiB pool in {s.Frames1G} GiB"));
        }

        var f2 = Faults;
        if (FitProfile.FromName(f2.Profile) is null) e.Add(new("faults.profile", $"must be ddr4 or jaguar (got '{f2.Profile}')"));
        // Field studies put fleets and DIMM vendors within about 10× of the FIT tables either way; 100× is beyond any
        // measured fleet, and finding a server's uncorrectable patterns compares every pair of its faults, so the work
        // grows as fit_scale² (at 1e6 a server has ~10^6 faults and the pairs do not fit in memory).
        if (!(f2.FitScale > 0 && f2.FitScale <= MaxFitScale)) e.Add(new("faults.fit_scale", $"must be in (0, {MaxFitScale}] (got {f2.FitScale}): field FIT rates lie within ~10× of the tables, and pattern finding is quadratic in a server's faults"));
        if (f2.Heterogeneity != Heterogeneity.None && !(f2.HeterogeneityParameter > 0 && f2.HeterogeneityParameter <= 10))
            e.Add(new("faults.heterogeneity.parameter", $"must be in (0, 10] (got {f2.HeterogeneityParameter}); σ≈1.5 for lognormal, shape≈0.3 for gamma"));
        if (!(f2.ScrubHours > 0 && f2.ScrubHours <= 8760)) e.Add(new("faults.scrub_hours", $"must be in (0, 8760] hours (got {f2.ScrubHours})"));
        if (!(f2.DepositedPerServerYear >= 0 && f2.DepositedPerServerYear <= 100)) e.Add(new("faults.deposited_per_server_year", $"must be in [0, 100] (got {f2.DepositedPerServerYear})"));
        if (f2.ReplaceAfterUes < 1) e.Add(new("faults.replacement.after_ues", $"must be at least 1 (got {f2.ReplaceAfterUes})"));
        if (!(f2.RepairDelayHours >= 0 && f2.RepairDelayHours <= 8760)) e.Add(new("faults.replacement.delay_hours", $"must be in [0, 8760] (got {f2.RepairDelayHours})"));

        var w = Workload;
        if (w.KernelGiB < 0) e.Add(new("workload.kernel_gib", $"must be ≥ 0 (got {w.KernelGiB})"));
        if (w.User4kGiB < 0) e.Add(new("workload.user_4k_gib", $"must be ≥ 0 (got {w.User4kGiB})"));
        // VM crashes are reported per VM-year, and VM-years are servers × years × occupancy × pool / mean VM size: with no
        // VMs the rate is 0/0.
        if (!(w.PoolOccupancy > 0 && w.PoolOccupancy <= 1)) e.Add(new("workload.pool_occupancy", $"must be in (0, 1] (got {w.PoolOccupancy}): with an empty pool there are no VM-years, and VM crashes per 1,000 VM-years are undefined"));
        if (w.VmSizes.Count == 0) e.Add(new("workload.vm_sizes", "must list at least one size"));
        foreach (var (g, x) in w.VmSizes)
            if (g < 1 || g > 4096 || !(x >= 0) || !double.IsFinite(x)) e.Add(new("workload.vm_sizes", $"entry {g} GiB weight {x}: sizes must be 1…4096 GiB, weights ≥ 0"));
        if (w.VmSizes.Count > 0 && w.VmSizes.Sum(v => v.Weight) <= 0) e.Add(new("workload.vm_sizes", "weights must not all be zero"));
        // Arrivals per server-year are the VMs present × 8760 h / lifetime: the work of a server grows as 1/lifetime.
        if (!(w.VmLifetimeDays >= MinVmLifetimeDays && w.VmLifetimeDays < 1e5)) e.Add(new("workload.vm_lifetime_days", $"must be in [{MinVmLifetimeDays:0.####}, 100000) days (got {w.VmLifetimeDays}): VMs living under an hour are not what a 1 GiB-page host runs, and each server's work grows as 1/lifetime"));
        if (!(w.TouchesPerLineHour >= 0 && double.IsFinite(w.TouchesPerLineHour))) e.Add(new("workload.touches_per_line_hour", $"must be ≥ 0 (got {w.TouchesPerLineHour})"));
        if (!(w.HotnessSigma >= 0 && w.HotnessSigma <= 5)) e.Add(new("workload.hotness_sigma", $"must be in [0, 5] (got {w.HotnessSigma})"));
        if (w.MappingsPerPage < 1 || w.MappingsPerPage > 64) e.Add(new("workload.mappings_per_page", $"must be 1…64 (got {w.MappingsPerPage})"));

        var g2 = Guest;
        void Prob(string path, double p) { if (!(p >= 0 && p <= 1)) e.Add(new(path, $"must be a probability in [0, 1] (got {p})")); }
        Prob("guest.guest_kernel_fraction", g2.GuestKernelFraction);
        Prob("guest.enlightened_fraction", g2.EnlightenedFraction);
        if (g2.MaxMces is < 1 or > 1_000_000) e.Add(new("guest.max_mces", $"must be 1…1000000, or left out for no budget (Linux has none) (got {g2.MaxMces})"));
        if (!(g2.MceWindowSeconds > 0 && g2.MceWindowSeconds <= 86400)) e.Add(new("guest.mce_window_s", $"must be in (0, 86400] seconds (got {g2.MceWindowSeconds})"));
        foreach (var (name, pp) in PolicyParams)
        {
            if (!FleetPolicies.TryParse(name, out _)) { e.Add(new($"policy_params.{name}", $"unknown policy '{name}'; use {string.Join(", ", FleetPolicies.Names)}")); continue; }
            if (pp.ContainsKey("enlightened"))
                e.Add(new($"policy_params.{name}.enlightened", "is set per guest by the fleet (guest.enlightened_fraction); remove it"));
            try { HugeFault.Policies.RecoveryPolicies.Create(name, pp); }
            catch (ArgumentException ex) { e.Add(new($"policy_params.{name}", ex.Message)); }
        }

        if (Servers < 1 || Servers > 10_000_000_000L) e.Add(new("run.servers", $"must be between 1 and 1e10 (got {Servers})"));
        if (!(Years > 0 && Years <= MaxYears)) e.Add(new("run.years", $"must be in (0, {MaxYears:0}] (got {Years})"));
        if (Policies.Count == 0) e.Add(new("run.policies", "must name at least one policy"));
        var unknown = Policies.Where(p => !FleetPolicies.TryParse(p, out _)).ToList();
        foreach (var p in unknown.Take(MaxListed)) e.Add(new("run.policies", $"unknown policy '{p}'; use {string.Join(", ", FleetPolicies.Names)}"));
        if (unknown.Count > MaxListed) e.Add(new("run.policies", $"… and {unknown.Count - MaxListed:N0} more unknown policies"));
        if (Policies.Distinct().Count() != Policies.Count) e.Add(new("run.policies", "lists a policy twice"));
        return e;
    }

    /// <summary>Largest <c>faults.fit_scale</c> (see <see cref="Validate"/>).</summary>
    public const double MaxFitScale = 100;
    /// <summary>Shortest <c>workload.vm_lifetime_days</c>: one hour.</summary>
    public const double MinVmLifetimeDays = 1.0 / 24;
    /// <summary>Unknown policies listed one by one before the rest are counted.</summary>
    private const int MaxListed = 10;
}

/// <summary>One validation problem: the YAML key path and what to do.</summary>
public sealed record FleetConfigError(string Path, string Message);

using System.CommandLine;
using System.CommandLine.Invocation;
using System.Globalization;
using System.Text;
using System.Text.Json;
using HugeFault.Fleet.Dram;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace HugeFault.Cli.Commands;

/// <summary>
/// <c>hugefault dram</c>: rank-level DRAM fault/ECC Monte Carlo. Thin: flags → <see cref="DramRankModel"/> →
/// <see cref="RankMonteCarlo"/> → a Spectre table or one JSON object. Every bad input ends as one line on stderr
/// naming the flag and the fix, exit code 2.
/// </summary>
internal static class DramCommand
{
    /// <summary>Exit code for bad user input.</summary>
    public const int UsageError = 2;

    private sealed record Flag(string Name, string Default, string Help, string HelpName)
    {
        public Option<string> Option { get; } = new(Name) { Description = $"{Help} (default: {Default})", HelpName = HelpName };
    }

    private static readonly Flag Chips = new("--chips", "18", "DRAM devices per rank, data + check (18 for x4 ECC, 9 for x8)", "n");
    private static readonly Flag Width = new("--width", "4", "DQs per device: 4 or 8", "4|8");
    private static readonly Flag Ranks = new("--ranks", "1", "ranks per trial (power of two)", "n");
    private static readonly Flag Banks = new("--banks", "8", "banks per device (power of two)", "n");
    private static readonly Flag Rows = new("--rows", "16384", "rows per bank (power of two)", "n");
    private static readonly Flag Columns = new("--columns", "2048", "column addresses (beats) per row (power of two)", "n");
    private static readonly Flag Years = new("--years", "7", "mission time per trial in years of 8760 h", "years");
    private static readonly Flag ScrubHours = new("--scrub-hours", "24", "patrol-scrub period; transient faults live until the next scrub", "hours");
    private static readonly Flag Fit = new("--fit", "jaguar", "FIT profile: jaguar (DDR2, 66.1 FIT/device) or ddr4 (field data, 109.4 FIT/device)", "jaguar|ddr4");
    private static readonly Flag FitScale = new("--fit-scale", "1", "multiplier on every FIT rate", "x");
    private static readonly Flag Ecc = new("--ecc", "chipkill", "ECC: none, secded, chipkill or adddc", "none|secded|chipkill|adddc");
    private static readonly Flag Weakened = new("--weakened-ecc", "0", "probability that a single-chip multi-bit fault defeats Chipkill/ADDDC on its own", "p");
    private static readonly Flag RowCluster = new("--row-cluster-rows", "512", "rows per sub-array for row-cluster faults (power of two)", "n");
    private static readonly Flag Trials = new("--trials", "1000000", "number of trials", "n");
    private static readonly Flag Seed = new("--seed", "1", "root seed (unsigned 64-bit); same seed, same results for any --threads", "n");
    private static readonly Flag Threads = new("--threads", "processor count", "worker threads", "n");
    private static readonly Flag Sampler = new("--sampler", "fast", "fast (Poisson count + alias placement) or reference (exponential gaps per process, slow)", "fast|reference");

    private static readonly Flag[] ValueFlags =
        [Chips, Width, Ranks, Banks, Rows, Columns, Years, ScrubHours, Fit, FitScale, Ecc, Weakened, RowCluster, Trials, Seed, Threads, Sampler];

    private static readonly Option<bool> Json = new("--json") { Description = "print exactly one JSON object instead of a table" };
    private static readonly Option<bool> LaneMultiChip = new("--lane-multichip") { Description = "treat multi-rank (lane) faults as multi-chip: a UE under every code" };

    // Maps library parameter names to the flag a CLI user can change.
    private static readonly Dictionary<string, Flag> FlagOfParameter = new()
    {
        [nameof(DramGeometry.ChipsPerRank)] = Chips,
        [nameof(DramGeometry.ChipWidth)] = Width,
        [nameof(DramGeometry.Ranks)] = Ranks,
        [nameof(DramGeometry.Banks)] = Banks,
        [nameof(DramGeometry.Rows)] = Rows,
        [nameof(DramGeometry.Columns)] = Columns,
        [nameof(DramRankModel.Years)] = Years,
        [nameof(DramRankModel.ScrubHours)] = ScrubHours,
        [nameof(DramRankModel.FitScale)] = FitScale,
        [nameof(DramRankModel.RowClusterRows)] = RowCluster,
        [nameof(EccOptions.WeakenedProbability)] = Weakened,
        [nameof(RankMonteCarloOptions.Trials)] = Trials,
        [nameof(RankMonteCarloOptions.Threads)] = Threads,
    };

    public static Command Create()
    {
        var cmd = new Command("dram", "Rank-level DRAM fault/ECC Monte Carlo: P(fault), P(uncorrectable), P(undetected) per trial.");
        foreach (var f in ValueFlags) cmd.Options.Add(f.Option);
        cmd.Options.Add(Json);
        cmd.Options.Add(LaneMultiChip);
        cmd.Action = new CliAction(Run);
        return cmd;
    }

    private static int Run(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {

        var geometry = new DramGeometry(
            ParseInt(parse, Chips), ParseInt(parse, Width), ParseInt(parse, Ranks),
            ParseInt(parse, Banks), ParseInt(parse, Rows), ParseInt(parse, Columns));
        string fitName = Value(parse, Fit);
        var fit = FitProfile.FromName(fitName)
                  ?? throw new UsageException($"--fit must be jaguar or ddr4 (got '{fitName}')");
        string eccName = Value(parse, Ecc);
        EccScheme scheme = eccName.ToLowerInvariant() switch
        {
            "none" => EccScheme.None,
            "secded" or "sec-ded" => EccScheme.SecDed,
            "chipkill" or "sddc" => EccScheme.Chipkill,
            "adddc" => EccScheme.Adddc,
            _ => throw new UsageException($"--ecc must be none, secded, chipkill or adddc (got '{eccName}')"),
        };
        string samplerName = Value(parse, Sampler);
        RankSamplerKind sampler = samplerName.ToLowerInvariant() switch
        {
            "fast" => RankSamplerKind.Fast,
            "reference" => RankSamplerKind.Reference,
            _ => throw new UsageException($"--sampler must be fast or reference (got '{samplerName}')"),
        };
        var model = new DramRankModel(
            geometry, fit, ParseDouble(parse, FitScale), ParseDouble(parse, Years), ParseDouble(parse, ScrubHours),
            new EccOptions(scheme, ParseDouble(parse, Weakened), parse.GetValue(LaneMultiChip)),
            ParseInt(parse, RowCluster));
        string threadsText = parse.GetValue(Threads.Option) ?? Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture);
        var options = new RankMonteCarloOptions(
            ParseLong(parse, Trials),
            ParseULong(parse, Seed),
            ParseInt(Threads, threadsText),
            sampler);

        var errors = model.Validate().Concat(options.Validate()).ToList();
        if (errors.Count > 0)
        {
            var e = errors[0];
            string flag = FlagOfParameter.TryGetValue(e.Parameter, out var f) ? f.Name : e.Parameter;
            throw new UsageException($"{flag} {e.Message}");
        }

        var result = RankMonteCarlo.Run(model, options);
        if (parse.GetValue(Json)) stdout.WriteLine(DramReport.ToJson(result));
        else DramReport.WriteTable(result, stdout);
        return 0;
    }

    private static string Value(ParseResult parse, Flag flag) => parse.GetValue(flag.Option) ?? flag.Default;

    private static int ParseInt(ParseResult parse, Flag flag) => ParseInt(flag, Value(parse, flag));

    private static int ParseInt(Flag flag, string text) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new UsageException($"{flag.Name} must be an integer (got '{text}')");

    private static long ParseLong(ParseResult parse, Flag flag)
    {
        string text = Value(parse, flag);
        // Accept 1e6-style counts too: people type them.
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v)) return v;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e18) return (long)d;
        throw new UsageException($"{flag.Name} must be a whole number (got '{text}')");
    }

    private static ulong ParseULong(ParseResult parse, Flag flag)
    {
        string text = Value(parse, flag);
        return ulong.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong v) ? v
            : throw new UsageException($"{flag.Name} must be an unsigned 64-bit integer (got '{text}')");
    }

    private static double ParseDouble(ParseResult parse, Flag flag)
    {
        string text = Value(parse, flag);
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v
            : throw new UsageException($"{flag.Name} must be a number (got '{text}')");
    }
}

/// <summary>Rendering of a <see cref="RankMonteCarloResult"/>: kept out of the library so the model has no UI dependency.</summary>
internal static class DramReport
{
    /// <summary>
    /// Exactly one JSON object. Every field except <c>trials_per_second</c> is a pure function of (model, trials,
    /// seed), so outputs for different <c>--threads</c> differ only in that field.
    /// </summary>
    public static string ToJson(RankMonteCarloResult r)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            var m = r.Model;
            w.WriteStartObject();
            w.WriteNumber("p_fault", r.Fault.Value);
            WriteCi(w, "p_fault_ci95", r.Fault.Wilson95);
            w.WriteNumber("p_fault_closed_form", m.ClosedFormFaultProbability);
            w.WriteNumber("p_uncorrectable", r.Uncorrectable.Value);
            WriteCi(w, "p_uncorrectable_ci95", r.Uncorrectable.Wilson95);
            w.WriteNumber("p_undetected", r.Undetected.Value);
            WriteCi(w, "p_undetected_ci95", r.Undetected.Wilson95);
            WriteFinite(w, "fit_uncorrectable", r.FitUncorrectablePerRank);
            w.WriteString("fit_uncorrectable_unit", "first UEs per 1e9 rank-hours");
            var fitCi = r.FitUncorrectablePerRank95;
            w.WriteStartArray("fit_uncorrectable_ci95");
            WriteFiniteValue(w, fitCi.Lower);
            WriteFiniteValue(w, fitCi.Upper);
            w.WriteEndArray();
            WriteFinite(w, "fit_uncorrectable_per_device", r.FitUncorrectablePerDevice);
            var ueTime = r.Tally.FirstUncorrectableHours;
            if (ueTime.Count > 0)
            {
                w.WriteNumber("mean_hours_to_first_uncorrectable", ueTime.Mean);
                WriteCi(w, "mean_hours_to_first_uncorrectable_ci95", ueTime.ConfidenceInterval95);
            }
            else w.WriteNull("mean_hours_to_first_uncorrectable");
            w.WriteNumber("trials", r.Tally.Trials);
            w.WriteNumber("trials_with_fault", r.Tally.FaultTrials);
            w.WriteNumber("trials_uncorrectable", r.Tally.UncorrectableTrials);
            w.WriteNumber("trials_undetected", r.Tally.UndetectedTrials);
            w.WriteNumber("faults", r.Tally.Faults);
            w.WriteNumber("mean_faults_per_trial", r.MeanFaultsPerTrial);
            w.WriteNumber("expected_faults_per_trial", m.ExpectedFaultsPerTrial);
            w.WriteNumber("trials_per_second", Math.Round(r.TrialsPerSecond));
            w.WriteStartObject("config");
            w.WriteNumber("chips", m.Geometry.ChipsPerRank);
            w.WriteNumber("width", m.Geometry.ChipWidth);
            w.WriteNumber("ranks", m.Geometry.Ranks);
            w.WriteNumber("banks", m.Geometry.Banks);
            w.WriteNumber("rows", m.Geometry.Rows);
            w.WriteNumber("columns", m.Geometry.Columns);
            w.WriteNumber("years", m.Years);
            w.WriteNumber("hours", m.Hours);
            w.WriteNumber("scrub_hours", m.ScrubHours);
            w.WriteString("fit", m.Fit.Name);
            w.WriteNumber("fit_total_per_device", m.Fit.Total);
            w.WriteNumber("fit_scale", m.FitScale);
            w.WriteString("ecc", EccName(m.Ecc.Scheme));
            w.WriteNumber("weakened_ecc", m.Ecc.WeakenedProbability);
            w.WriteBoolean("lane_multichip", m.Ecc.LaneFaultIsMultiChip);
            w.WriteNumber("row_cluster_rows", m.RowClusterRows);
            w.WriteNumber("seed", r.Options.Seed);
            w.WriteString("sampler", r.Options.Sampler == RankSamplerKind.Fast ? "fast" : "reference");
            w.WriteNumber("block_size", RankMonteCarloOptions.BlockSize);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteCi(Utf8JsonWriter w, string name, HugeFault.Simulation.ConfidenceInterval ci)
    {
        w.WriteStartArray(name);
        w.WriteNumberValue(ci.Lower);
        w.WriteNumberValue(ci.Upper);
        w.WriteEndArray();
    }

    private static void WriteFinite(Utf8JsonWriter w, string name, double x)
    {
        if (double.IsFinite(x)) w.WriteNumber(name, x);
        else w.WriteNull(name);
    }

    private static void WriteFiniteValue(Utf8JsonWriter w, double x)
    {
        if (double.IsFinite(x)) w.WriteNumberValue(x);
        else w.WriteNullValue();
    }

    public static string EccName(EccScheme s) => s switch
    {
        EccScheme.None => "none",
        EccScheme.SecDed => "secded",
        EccScheme.Chipkill => "chipkill",
        EccScheme.Adddc => "adddc",
        _ => s.ToString(),
    };

    /// <summary>The human table, rendered as data (an <see cref="IRenderable"/>) onto <paramref name="output"/>.</summary>
    public static void WriteTable(RankMonteCarloResult r, TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 110;
        console.Write(BuildTable(r));
    }

    public static IRenderable BuildTable(RankMonteCarloResult r)
    {
        var m = r.Model;
        var g = m.Geometry;
        var table = new Table()
            .Title($"hugefault dram: {g.ChipsPerRank} x{g.ChipWidth} chips × {g.Ranks} rank(s), {m.Fit.Name} ({m.Fit.Total:0.##} FIT/device × {Num(m.FitScale)}), " +
                   $"{EccName(m.Ecc.Scheme)}, {Num(m.Years)} y, scrub {Num(m.ScrubHours)} h")
            .AddColumn("Quantity")
            .AddColumn(new TableColumn("Estimate").RightAligned())
            .AddColumn(new TableColumn("95% CI").RightAligned())
            .AddColumn("Note");
        AddP(table, "P(at least one fault)", r.Fault, $"closed form {Fmt(m.ClosedFormFaultProbability)}");
        AddP(table, "P(uncorrectable error)", r.Uncorrectable, $"{r.Tally.UncorrectableTrials} of {r.Tally.Trials} trials");
        AddP(table, "P(undetected error)", r.Undetected, $"{r.Tally.UndetectedTrials} of {r.Tally.Trials} trials");
        var fitCi = r.FitUncorrectablePerRank95;
        table.AddRow("FIT of UEs (per rank)", Fmt(r.FitUncorrectablePerRank), Markup.Escape($"[{Fmt(fitCi.Lower)}, {Fmt(fitCi.Upper)}]"),
            "first UEs per 1e9 rank-hours");
        table.AddRow("FIT of UEs (per device)", Fmt(r.FitUncorrectablePerDevice), "", $"per rank / {g.ChipsPerRank}");
        var ueTime = r.Tally.FirstUncorrectableHours;
        if (ueTime.Count > 0)
        {
            var t = ueTime.ConfidenceInterval95;
            table.AddRow("Hours to first UE (UE trials)", HugeFault.Reports.Fmt.Count((long)Math.Round(ueTime.Mean)),
                Markup.Escape($"[{t.Lower:0}, {t.Upper:0}]"), $"mission {Num(m.Hours)} h");
        }
        table.AddRow("Faults per trial", Fmt(r.MeanFaultsPerTrial), "",
            $"expected {Fmt(m.ExpectedFaultsPerTrial)}");
        table.AddRow("Trials", HugeFault.Reports.Fmt.Count(r.Tally.Trials), "", $"seed {r.Options.Seed}");
        table.AddRow("Trials per second", HugeFault.Reports.Fmt.Count((long)r.TrialsPerSecond), "",
            $"{r.Options.Threads} thread(s), {r.Elapsed.TotalSeconds:0.###} s");
        return table;
    }

    private static void AddP(Table t, string name, HugeFault.Simulation.ProportionEstimate p, string note)
    {
        var ci = p.Wilson95;
        t.AddRow(Markup.Escape(name), Fmt(p.Value), Markup.Escape($"[{Fmt(ci.Lower)}, {Fmt(ci.Upper)}]"), Markup.Escape(note));
    }

    private static string Fmt(double x) => HugeFault.Reports.Fmt.Num(x, 4);

    private static string Num(double x) => HugeFault.Reports.Fmt.Num(x);
}

using System.Globalization;
using System.Text;
using System.Text.Json;
using HugeFault.Simulation;

namespace HugeFault.Fleet;

/// <summary>What a report needs besides the tallies: the run's identity and the VM-years denominator.</summary>
/// <param name="Seed">Root seed.</param>
/// <param name="ServersTotal">Servers of the whole study (all shards).</param>
/// <param name="Years">Mission per server.</param>
/// <param name="MeanConcurrentVms">VMs per server on average (VM-years = servers × years × this).</param>
/// <param name="Shard">"K/N", or "merged" / "all".</param>
/// <param name="ConfigSummary">One-line description of the configuration.</param>
/// <param name="ZeroProbability">P(a server has no fault and no deposited poison).</param>
public sealed record FleetContext(ulong Seed, long ServersTotal, double Years, double MeanConcurrentVms, string Shard, string ConfigSummary, double ZeroProbability);

/// <summary>
/// A reported fleet metric: the JSON/CSV name, its unit, where it comes from, its scale and a short label for tables;
/// <c>Proportion</c> marks a 0/1 value per server (Wilson interval) rather than a non-negative amount (log-scale interval);
/// <c>PerServerYears</c> divides by the mission's years (a rate per server-year).
/// </summary>
public sealed record FleetMetric(string Name, string Unit, PolicyMetric Source, bool PerVmYears, double Scale, string Label, bool Proportion = false, bool PerServerYears = false);

/// <summary>One reported quantity of one policy.</summary>
public sealed record FleetMetricRow(string Policy, string Metric, string Unit, MeanEstimate Value, MeanEstimate? DiffVsMainline, double Total);

/// <summary>The reported quantities, derived from a <see cref="FleetTally"/> (pure data; rendering lives in the CLI).</summary>
public sealed record FleetReport(FleetContext Context, FleetTally Tally)
{
    private const double GiB = 1L << 30;

    /// <summary>The reported metrics: name, unit, source, per-VM-year or per-server, scale from the per-server integer to the unit.</summary>
    public static IReadOnlyList<FleetMetric> Metrics { get; } =
    [
        new("stranded_gib_days", "GiB-days per server", PolicyMetric.StrandedPageHours, false, 4096.0 / GiB / 24.0, "stranded capacity"),
        new("stranded_gib_end", "GiB per server at end", PolicyMetric.StrandedPagesEnd, false, 4096.0 / GiB, "stranded at end"),
        new("ue_events", "per server", PolicyMetric.UeEvents, false, 1, "UE events"),
        new("consumed_ues", "per server", PolicyMetric.ConsumedUes, false, 1, "consumed UEs"),
        new("vm_crashes", "per 1,000 VM-years", PolicyMetric.VmsKilled, true, 1000, "VM crashes"),
        new("vms_killed", "per server", PolicyMetric.VmsKilled, false, 1, "VMs killed"),
        new("guest_memory_lost_gib", "GiB per server", PolicyMetric.GuestLostBytes, false, 1 / GiB, "guest memory lost"),
        new("good_data_lost_gib", "GiB per server", PolicyMetric.GoodDataLostBytes, false, 1 / GiB, "good data lost"),
        new("extra_memory_peak_gib", "GiB per server", PolicyMetric.ExtraPeakBytes, false, 1 / GiB, "extra memory at peak"),
        new("page_table_peak_kib", "KiB per server", PolicyMetric.PageTablePeakBytes, false, 1 / 1024.0, "page-table memory"),
        new("live_migrations", "per server", PolicyMetric.LiveMigrations, false, 1, "live migrations"),
        new("hugepages_lost", "1 GiB pages per server", PolicyMetric.HugePagesLost, false, 1, "1 GiB pages lost"),
        new("repairs", "per server", PolicyMetric.Repairs, false, 1, "repairs"),
        new("fallbacks", "per server", PolicyMetric.Fallbacks, false, 1, "fallbacks"),
        new("servers_with_ue_event", "fraction of servers", PolicyMetric.ServersWithUeEvent, false, 1, "servers with a UE event", Proportion: true),
        new("host_panics", "per 1,000 server-years", PolicyMetric.HostPanics, false, 1000, "host panics", PerServerYears: true),
    ];

    public double VmYearsPerServer => Context.Years * Context.MeanConcurrentVms;

    /// <summary>Mean stranded GiB per server during monthly bin <paramref name="b"/> of policy <paramref name="p"/>.</summary>
    public double SeriesMeanGiB(int p, int b)
    {
        double binHours = Context.Years * 8760.0 / Tally.Bins;
        return Tally.Series[p, b] * 4096.0 / GiB / binHours / Math.Max(1, Tally.Servers);
    }

    /// <summary>
    /// Every metric of every policy. Means get the interval their kind calls for (<see cref="Intervals"/>: Wilson for
    /// proportions, log-scale for non-negative means, so no bound is ever below zero); Δ keeps the paired normal interval.
    /// </summary>
    public IEnumerable<FleetMetricRow> Rows()
    {
        var t = Tally;
        for (int p = 0; p < t.Policies.Length; p++)
        {
            foreach (var m in Metrics)
            {
                double k = m.PerVmYears ? m.Scale / VmYearsPerServer : m.PerServerYears ? m.Scale / Context.Years : m.Scale;
                var v = Honest(t.Servers, t.Sum[p, (int)m.Source], t.SumSq[p, (int)m.Source], m.Proportion).Scale(k);
                MeanEstimate? d = t.BaselineIndex >= 0 && p != t.BaselineIndex ? t.PolicyDiff(p, m.Source).Scale(k) : null;
                double total = (double)t.Sum[p, (int)m.Source] * (m.PerVmYears || m.PerServerYears ? 1 : m.Scale);
                yield return new FleetMetricRow(t.Policies[p], m.Name, m.Unit, v, d, total);
            }
        }
    }

    /// <summary>Mean with its honest interval: Wilson for a 0/1 quantity, log-scale for a non-negative one.</summary>
    public static MeanEstimate Honest(long n, Int128 sum, Int128 sumSq, bool proportion)
    {
        if (n <= 0) return new(0, 0, 0);
        if (proportion)
        {
            var w = Intervals.Wilson((long)sum, n);
            return new((double)sum / n, w.Lower, w.Upper);
        }
        var (mean, se) = Intervals.MeanSe(n, (double)sum, (double)sumSq);
        var ci = Intervals.Positive(mean, se);
        return new(mean, ci.Lower, ci.Upper);
    }

    /// <summary>Fraction of servers with a fault-level UE (an uncorrectable pattern) over the mission.</summary>
    public MeanEstimate ServersWithUe => Honest(Tally.Servers, Tally.ServerSum[(int)ServerMetric.ServersWithUe], Tally.ServerSumSq[(int)ServerMetric.ServersWithUe], proportion: true);

    /// <summary>Exactly one JSON object: context, fleet-level numbers, per-policy metrics with CIs and paired differences, and the raw accumulators <c>hugefault fleet merge</c> adds up.</summary>
    public string ToJson()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            var t = Tally;
            var c = Context;
            w.WriteStartObject();
            w.WriteString("format", "hugefault-fleet/1");
            w.WriteStartObject("context");
            w.WriteNumber("seed", c.Seed);
            w.WriteNumber("servers_total", c.ServersTotal);
            w.WriteNumber("years", c.Years);
            w.WriteNumber("mean_concurrent_vms", c.MeanConcurrentVms);
            w.WriteString("shard", c.Shard);
            w.WriteString("config", c.ConfigSummary);
            w.WriteNumber("p_server_fault_free", c.ZeroProbability);
            w.WriteEndObject();

            w.WriteStartObject("fleet");
            w.WriteNumber("servers", t.Servers);
            w.WriteNumber("server_years", t.Servers * c.Years);
            w.WriteNumber("vm_years", t.Servers * VmYearsPerServer);
            Est(w, "servers_with_ue_fraction", ServersWithUe);
            Est(w, "faults_per_server", ServerRate(ServerMetric.Faults));
            Est(w, "ue_patterns_per_server", ServerRate(ServerMetric.UePatterns));
            Est(w, "dimm_replacements_per_server", ServerRate(ServerMetric.DimmReplacements));
            Est(w, "kernel_ues_per_server", ServerRate(ServerMetric.KernelUes));
            w.WriteStartArray("ue_footprint_by_mode");
            for (int i = 0; i < ServerOutcome.Modes; i++)
            {
                w.WriteStartObject();
                w.WriteString("mode", ModeName(i));
                w.WriteNumber("patterns", t.ModePatterns[i]);
                w.WriteNumber("frames_1g", t.ModeFrames[i]);
                w.WriteNumber("lines", t.ModeLines[i]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();

            w.WriteStartObject("policies");
            foreach (var group in Rows().GroupBy(r => r.Policy))
            {
                w.WriteStartObject(group.Key);
                foreach (var r in group)
                {
                    w.WriteStartObject(r.Metric);
                    w.WriteString("unit", r.Unit);
                    w.WriteNumber("mean", r.Value.Mean);
                    Ci(w, "ci95", r.Value);
                    w.WriteNumber("total", r.Total);
                    if (r.DiffVsMainline is { } d)
                    {
                        w.WriteNumber("diff_vs_mainline", d.Mean);
                        Ci(w, "diff_ci95", d);
                    }
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndObject();

            w.WriteStartObject("series_mean_stranded_gib_per_server");
            for (int p = 0; p < t.Policies.Length; p++)
            {
                w.WriteStartArray(t.Policies[p]);
                for (int b = 0; b < t.Bins; b++) w.WriteNumberValue(SeriesMeanGiB(p, b));
                w.WriteEndArray();
            }
            w.WriteEndObject();

            WriteRaw(w, t);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>A per-server fleet quantity (faults, patterns, replacements) with its log-scale interval.</summary>
    public MeanEstimate ServerRate(ServerMetric m) => Honest(Tally.Servers, Tally.ServerSum[(int)m], Tally.ServerSumSq[(int)m], proportion: false);

    public static string ModeName(int i) => i < Dram.DramFaultModes.Count ? Dram.DramFaultModes.Name((Dram.DramFaultMode)i) : "deposited";

    private static void Est(Utf8JsonWriter w, string name, MeanEstimate e)
    {
        w.WriteStartObject(name);
        w.WriteNumber("mean", e.Mean);
        Ci(w, "ci95", e);
        w.WriteEndObject();
    }

    private static void Ci(Utf8JsonWriter w, string name, MeanEstimate e)
    {
        w.WriteStartArray(name);
        w.WriteNumberValue(e.Lower);
        w.WriteNumberValue(e.Upper);
        w.WriteEndArray();
    }

    private static void WriteRaw(Utf8JsonWriter w, FleetTally t)
    {
        w.WriteStartObject("raw");
        w.WriteStartArray("policies");
        foreach (var p in t.Policies) w.WriteStringValue(p);
        w.WriteEndArray();
        w.WriteNumber("bins", t.Bins);
        w.WriteNumber("servers", t.Servers);
        w.WriteNumber("servers_touched", t.ServersTouched);
        Matrix(w, "sum", t.Sum);
        Matrix(w, "sum_sq", t.SumSq);
        Matrix(w, "diff_sum", t.DiffSum);
        Matrix(w, "diff_sum_sq", t.DiffSumSq);
        Vector(w, "server_sum", t.ServerSum);
        Vector(w, "server_sum_sq", t.ServerSumSq);
        Longs(w, "mode_patterns", t.ModePatterns);
        Longs(w, "mode_frames", t.ModeFrames);
        Longs(w, "mode_lines", t.ModeLines);
        w.WriteStartArray("series");
        for (int p = 0; p < t.Policies.Length; p++)
        {
            w.WriteStartArray();
            for (int b = 0; b < t.Bins; b++) w.WriteNumberValue(t.Series[p, b]);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    // Int128 values are written as exact integer literals.
    private static void Matrix(Utf8JsonWriter w, string name, Int128[,] m)
    {
        w.WriteStartArray(name);
        for (int i = 0; i < m.GetLength(0); i++) Vector(w, null, Enumerable.Range(0, m.GetLength(1)).Select(j => m[i, j]).ToArray());
        w.WriteEndArray();
    }

    private static void Vector(Utf8JsonWriter w, string? name, Int128[] v)
    {
        if (name is null) w.WriteStartArray(); else w.WriteStartArray(name);
        foreach (var x in v) w.WriteRawValue(x.ToString(CultureInfo.InvariantCulture));
        w.WriteEndArray();
    }

    private static void Longs(Utf8JsonWriter w, string name, long[] v)
    {
        w.WriteStartArray(name);
        foreach (var x in v) w.WriteNumberValue(x);
        w.WriteEndArray();
    }

    /// <summary>Reads a report written by <see cref="ToJson"/> back into context and exact tallies; null with a message when the text is not one.</summary>
    public static (FleetReport? Report, string? Error) FromJson(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (!root.TryGetProperty("format", out var f) || f.GetString() != "hugefault-fleet/1")
                return (null, "not a 'hugefault fleet --json' output (missing format hugefault-fleet/1)");
            var c = root.GetProperty("context");
            var ctx = new FleetContext(c.GetProperty("seed").GetUInt64(), c.GetProperty("servers_total").GetInt64(), c.GetProperty("years").GetDouble(),
                c.GetProperty("mean_concurrent_vms").GetDouble(), c.GetProperty("shard").GetString() ?? "", c.GetProperty("config").GetString() ?? "",
                c.GetProperty("p_server_fault_free").GetDouble());
            var raw = root.GetProperty("raw");
            var policies = raw.GetProperty("policies").EnumerateArray().Select(x => x.GetString() ?? "").ToArray();
            // the counts that size the tallies come from the file: out-of-range ones are refused before anything is allocated
            int bins = raw.GetProperty("bins").GetInt32();
            if (bins is < 1 or > FleetConfig.MaxBins)
                return (null, $"malformed fleet JSON: raw.bins must be 1 to {FleetConfig.MaxBins} (one per month of at most {FleetConfig.MaxYears:0} years), got {bins}");
            if (policies.Length == 0 || policies.Any(string.IsNullOrEmpty) || policies.Distinct().Count() != policies.Length)
                return (null, "malformed fleet JSON: raw.policies must list each policy once, by name");
            var t = new FleetTally(policies, bins);
            t.Servers = raw.GetProperty("servers").GetInt64();
            t.ServersTouched = raw.GetProperty("servers_touched").GetInt64();
            // every array must have exactly the shape the tallies have: a value missing or added is refused, not read as 0
            foreach (var (name, m) in new[] { ("sum", t.Sum), ("sum_sq", t.SumSq), ("diff_sum", t.DiffSum), ("diff_sum_sq", t.DiffSumSq) })
                ReadMatrix(raw, name, m.GetLength(0), m.GetLength(1), (i, j, x) => m[i, j] = Int128.Parse(x.GetRawText(), CultureInfo.InvariantCulture));
            foreach (var (name, v) in new[] { ("server_sum", t.ServerSum), ("server_sum_sq", t.ServerSumSq) })
                ReadMatrix(raw, name, 1, v.Length, (_, j, x) => v[j] = Int128.Parse(x.GetRawText(), CultureInfo.InvariantCulture), vector: true);
            foreach (var (name, v) in new[] { ("mode_patterns", t.ModePatterns), ("mode_frames", t.ModeFrames), ("mode_lines", t.ModeLines) })
                ReadMatrix(raw, name, 1, v.Length, (_, j, x) => v[j] = x.GetInt64(), vector: true);
            ReadMatrix(raw, "series", policies.Length, bins, (i, j, x) => t.Series[i, j] = x.GetInt64());
            // what no run can write: a negative count or sum of squares (the server count is checked against the shard by the merge)
            if (t.ServersTouched < 0) return (null, $"malformed fleet JSON: raw.servers_touched is negative ({t.ServersTouched})");
            foreach (var (name, m) in new[] { ("sum_sq", t.SumSq), ("diff_sum_sq", t.DiffSumSq) })
                foreach (var x in m) if (x < 0) return (null, $"malformed fleet JSON: raw.{name} holds a negative sum of squares ({x})");
            if (t.ServerSumSq.Any(x => x < 0) || t.ModePatterns.Concat(t.ModeFrames).Concat(t.ModeLines).Any(x => x < 0))
                return (null, "malformed fleet JSON: raw.server_sum_sq or a raw.mode_* count is negative");
            return (new FleetReport(ctx, t), null);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
        {
            return (null, $"malformed fleet JSON: {e.Message}");
        }
    }

    /// <summary>Reads array <c>raw.name</c> (of <paramref name="rows"/> arrays of <paramref name="cols"/> numbers, or one array of them), refusing any other shape.</summary>
    private static void ReadMatrix(JsonElement raw, string name, int rows, int cols, Action<int, int, JsonElement> set, bool vector = false)
    {
        var e = raw.GetProperty(name);
        if (vector)
        {
            if (e.GetArrayLength() != cols) throw new FormatException($"raw.{name} has {e.GetArrayLength()} values, expected {cols}");
            int j = 0;
            foreach (var x in e.EnumerateArray()) set(0, j++, x);
            return;
        }
        if (e.GetArrayLength() != rows) throw new FormatException($"raw.{name} has {e.GetArrayLength()} rows, expected {rows} (one per policy)");
        int i = 0;
        foreach (var row in e.EnumerateArray())
        {
            if (row.GetArrayLength() != cols) throw new FormatException($"raw.{name} row {i} has {row.GetArrayLength()} values, expected {cols}");
            int j = 0;
            foreach (var x in row.EnumerateArray()) set(i, j++, x);
            i++;
        }
    }

    /// <summary>Merges shard reports: exact sums; contexts must agree on seed, years, VM density and policies.</summary>
    public static (FleetReport? Report, string? Error) Merge(IReadOnlyList<FleetReport> parts)
    {
        if (parts.Count == 0) return (null, "nothing to merge");
        var first = parts[0];
        var total = new FleetTally(first.Tally.Policies, first.Tally.Bins);
        foreach (var p in parts)
        {
            var c = p.Context;
            if (c.Seed != first.Context.Seed || c.Years != first.Context.Years || c.ServersTotal != first.Context.ServersTotal ||
                c.MeanConcurrentVms != first.Context.MeanConcurrentVms || c.ConfigSummary != first.Context.ConfigSummary)
                return (null, $"shard {c.Shard} comes from a different run (seed, years, servers or configuration differ)");
            if (!p.Tally.Policies.SequenceEqual(first.Tally.Policies) || p.Tally.Bins != first.Tally.Bins)
                return (null, $"shard {c.Shard} has a different policy list");
            total.Merge(p.Tally);
        }
        return (new FleetReport(first.Context with { Shard = "merged" }, total), null);
    }
}

using System.Text;
using System.Text.Json;
using HugeFault.Reports;
using HugeFault.Scenarios;

namespace HugeFault.Cli.Render;

/// <summary>The comparison as JSON (one object), CSV (one tidy table, fleet included) or plain text.</summary>
internal static class CompareOutput
{
    private static readonly (string Name, Func<RunMetrics, object> Value)[] Columns =
    [
        ("inaccessible_bytes", r => r.InaccessibleBytes), ("good_data_lost_bytes", r => r.GoodDataLostBytes), ("tasks_signalled", r => r.TasksSignalled),
        ("tasks_killed", r => r.TasksKilled), ("extra_peak_bytes", r => r.ExtraPeakBytes), ("page_table_peak_bytes", r => r.PageTablePeakBytes),
        ("entries_written", r => r.EntriesWritten), ("pages_copied", r => r.PagesCopied), ("mapcount_updates", r => r.MapcountUpdates),
        ("pool_huge_pages_lost", r => r.PoolHugePagesLost), ("inaccessible_ns", r => r.InaccessibleNs), ("expectations_hold", r => r.ExpectationsHold),
        ("expectation_failures", r => r.ExpectationFailures), ("vms_total", r => r.VmsTotal), ("vms_survived", r => r.VmsSurvived),
        ("guest_memory_lost_bytes", r => r.GuestMemoryLostBytes), ("host_memory_lost_bytes", r => r.HostMemoryLostBytes), ("migrations", r => r.Migrations),
        ("migrations_refused", r => r.MigrationsRefused), ("migration_downtime_ns", r => r.MigrationDowntimeNs), ("postcopy_stall_p99_ns", r => r.PostcopyStallP99Ns),
        ("fake_poisoned_bytes", r => r.FakePoisonedBytes),
    ];

    public static string Text(ReportDoc doc)
    {
        var w = new StringWriter();
        Terminal.Write(doc, w, new TerminalOptions(TerminalOptions.PipeWidth, Ascii: true, Wide: false));
        return w.ToString();
    }

    public static string Csv(CompareResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine("section,scenario,policy,metric,unit,value,ci_lo,ci_hi,diff_vs_mainline,diff_lo,diff_hi");
        var own = r.Scenarios.ToDictionary(s => s.Name, s => s.Host.Policy);
        foreach (var m in r.Rows)
            foreach (var (name, value) in Columns)
            {
                // expectations are the scenario author's, for one policy: other policies have none
                if (name.StartsWith("expectation", StringComparison.Ordinal) && own[m.Scenario] != m.Policy) continue;
                string v = value(m) switch { bool b => b ? "true" : "false", IFormattable x => x.ToString(null, System.Globalization.CultureInfo.InvariantCulture), var o => o.ToString() ?? "" };
                sb.AppendLine($"scenario,{Q(m.Scenario)},{m.Policy},{name},,{v},,,,,");
            }
        if (r.Fleet is { } f)
            foreach (var x in f.Rows())
            {
                string d = x.DiffVsMainline is { } y ? $"{Fmt.Raw(y.Mean)},{Fmt.Raw(y.Lower)},{Fmt.Raw(y.Upper)}" : ",,";
                sb.AppendLine($"fleet,,{x.Policy},{x.Metric},{Q(x.Unit)},{Fmt.Raw(x.Value.Mean)},{Fmt.Raw(x.Value.Lower)},{Fmt.Raw(x.Value.Upper)},{d}");
            }
        return sb.ToString();
    }

    private static string Q(string s) => "\"" + s.Replace("\"", "\"\"") + "\"";

    public static string Json(CompareResult r)
    {
        var f = r.Figures();
        var v = r.Verdict(f);
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            j.WriteStartObject();
            j.WriteString("format", "hugefault-compare/2");
            j.WriteStartArray("policies");
            foreach (var p in r.Policies) j.WriteStringValue(p);
            j.WriteEndArray();
            j.WriteStartArray("verdict");
            foreach (var s in v.All) j.WriteStringValue(s);
            j.WriteEndArray();
            j.WriteStartObject("summary");
            foreach (var p in f.Policies)
            {
                j.WriteStartObject(p);
                foreach (var m in f.Metrics.Where(m => f.Has(p, m.Key)))
                {
                    var e = f.Value(p, m.Key);
                    j.WriteStartObject(m.Key);
                    j.WriteString("label", m.Label);
                    if (m.Unit.Length > 0) j.WriteString("unit", m.Unit);
                    j.WriteNumber("value", e.Mean);
                    if (!e.IsExact) { j.WriteStartArray("ci95"); j.WriteNumberValue(e.Lower); j.WriteNumberValue(e.Upper); j.WriteEndArray(); }
                    if (f.Deltas.TryGetValue((p, m.Key), out var d))
                    {
                        j.WriteNumber("diff_vs_mainline", d.Mean);
                        j.WriteStartArray("diff_ci95"); j.WriteNumberValue(d.Lower); j.WriteNumberValue(d.Upper); j.WriteEndArray();
                    }
                    j.WriteEndObject();
                }
                j.WriteEndObject();
            }
            j.WriteEndObject();
            j.WriteStartArray("scenarios");
            var own = r.Scenarios.ToDictionary(s => s.Name, s => s.Host.Policy);
            foreach (var m in r.Rows)
            {
                j.WriteStartObject();
                j.WriteString("scenario", m.Scenario);
                j.WriteString("policy", m.Policy);
                j.WriteString("written_for", own[m.Scenario]);
                foreach (var (name, value) in Columns)
                {
                    if (name.StartsWith("expectation", StringComparison.Ordinal) && own[m.Scenario] != m.Policy) continue;
                    switch (value(m))
                    {
                        case bool b: j.WriteBoolean(name, b); break;
                        case int n: j.WriteNumber(name, n); break;
                        case long l: j.WriteNumber(name, l); break;
                    }
                }
                j.WriteEndObject();
            }
            j.WriteEndArray();
            if (r.Fleet is { } fl)
            {
                j.WritePropertyName("fleet");
                using var doc = JsonDocument.Parse(fl.ToJson());
                doc.WriteTo(j);
            }
            if (r.Sensitivity is { } sens)
            {
                j.WriteStartObject("sensitivity");
                j.WriteNumber("servers_per_run", sens.Servers);
                var claims = SensitivityReport.Claims(f);
                j.WriteStartArray("runs");
                foreach (var run in sens.Runs)
                {
                    var rf = SensitivityReport.FiguresOf(run);
                    j.WriteStartObject();
                    j.WriteString("parameter", run.Parameter!.Key);
                    j.WriteString("end", run.High ? "high" : "low");
                    j.WriteNumber("value", run.Value);
                    j.WriteStartArray("claims_not_holding");
                    foreach (var c in claims.Where(c => SensitivityReport.Status(rf, c) < 1)) j.WriteStringValue(c.Text(f.Baseline ?? "mainline"));
                    j.WriteEndArray();
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                j.WriteEndObject();
            }
            j.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}

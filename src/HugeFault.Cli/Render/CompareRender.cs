using System.Globalization;
using System.Text;
using HugeFault.Mm;
using HugeFault.Scenarios;
using Spectre.Console;

namespace HugeFault.Cli.Render;

/// <summary>The policy comparison as a table, JSON or CSV.</summary>
internal static class CompareRender
{
    internal static string B(long bytes) => bytes switch
    {
        0 => "0",
        >= 1L << 30 => (bytes / (double)(1L << 30)).ToString("0.###", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (bytes / (double)(1L << 20)).ToString("0.###", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (bytes / 1024.0).ToString("0.###", CultureInfo.InvariantCulture) + " KiB",
        _ => $"{bytes} B",
    };

    public static void Table(IAnsiConsole c, IReadOnlyList<RunMetrics> rows)
    {
        foreach (var g in rows.GroupBy(r => r.Scenario))
        {
            var t = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(g.Key)}[/]");
            foreach (var h in new[] { "policy", "inaccessible", "good data lost", "signalled", "killed", "extra mem peak", "page tables peak", "entries written", "pages copied", "mapcount upd.", "pool pages lost", "expectations" })
                t.AddColumn(new TableColumn(h).RightAligned());
            foreach (var r in g)
                t.AddRow(r.Policy, B(r.InaccessibleBytes), B(r.GoodDataLostBytes), r.TasksSignalled.ToString(), r.TasksKilled.ToString(),
                    B(r.ExtraPeakBytes), B(r.PageTablePeakBytes), r.EntriesWritten.ToString(), r.PagesCopied.ToString(), r.MapcountUpdates.ToString(),
                    r.PoolHugePagesLost.ToString(), r.ExpectationsHold ? "[green]hold[/]" : $"[red]{r.ExpectationFailures} fail[/]");
            c.Write(t);
            if (g.Any(r => r.VmsTotal > 0))
            {
                var v = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(g.Key)}[/]: VMs and migration");
                foreach (var h in new[] { "policy", "VMs survived", "guest memory lost", "host memory lost", "migrations (refused)", "downtime", "post-copy stall p99", "fake-poisoned on destination" })
                    v.AddColumn(new TableColumn(h).RightAligned());
                foreach (var r in g)
                    v.AddRow(r.Policy, $"{r.VmsSurvived}/{r.VmsTotal}", B(r.GuestMemoryLostBytes), B(r.HostMemoryLostBytes), $"{r.Migrations} ({r.MigrationsRefused})",
                        r.Migrations == 0 ? "-" : $"{r.MigrationDowntimeNs / 1e6:0.###} ms", r.PostcopyStallP99Ns == 0 ? "-" : r.PostcopyStallP99Ns >= 1_000_000 ? $"{r.PostcopyStallP99Ns / 1e6:0.#} ms" : $"{r.PostcopyStallP99Ns / 1e3:0.#} us",
                        B(r.FakePoisonedBytes));
                c.Write(v);
            }
        }
    }

    private static readonly string[] Cols = ["scenario", "policy", "inaccessible_bytes", "good_data_lost_bytes", "tasks_signalled", "tasks_killed", "extra_peak_bytes", "page_table_peak_bytes", "entries_written", "pages_copied", "mapcount_updates", "pool_huge_pages_lost", "inaccessible_ns", "expectations_hold",
        "vms_total", "vms_survived", "guest_memory_lost_bytes", "host_memory_lost_bytes", "migrations", "migrations_refused", "migration_downtime_ns", "postcopy_stall_p99_ns", "fake_poisoned_bytes"];

    private static object[] Vals(RunMetrics r) => [r.Scenario, r.Policy, r.InaccessibleBytes, r.GoodDataLostBytes, r.TasksSignalled, r.TasksKilled, r.ExtraPeakBytes, r.PageTablePeakBytes, r.EntriesWritten, r.PagesCopied, r.MapcountUpdates, r.PoolHugePagesLost, r.InaccessibleNs, r.ExpectationsHold,
        r.VmsTotal, r.VmsSurvived, r.GuestMemoryLostBytes, r.HostMemoryLostBytes, r.Migrations, r.MigrationsRefused, r.MigrationDowntimeNs, r.PostcopyStallP99Ns, r.FakePoisonedBytes];

    public static string Csv(IReadOnlyList<RunMetrics> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine(string.Join(',', Cols));
        foreach (var r in rows)
            sb.AppendLine(string.Join(',', Vals(r).Select(v => v switch
            {
                string s => "\"" + s.Replace("\"", "\"\"") + "\"",
                bool b => b ? "true" : "false",
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                _ => v.ToString(),
            })));
        return sb.ToString();
    }

    public static string Json(IReadOnlyList<RunMetrics> rows, Action<System.Text.Json.Utf8JsonWriter>? extra = null)
    {
        using var ms = new MemoryStream();
        using (var j = new System.Text.Json.Utf8JsonWriter(ms, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            j.WriteStartObject();
            j.WriteStartArray("scenarios");
            foreach (var r in rows)
            {
                j.WriteStartObject();
                var v = Vals(r);
                for (int i = 0; i < Cols.Length; i++)
                {
                    switch (v[i])
                    {
                        case string s: j.WriteString(Cols[i], s); break;
                        case bool b: j.WriteBoolean(Cols[i], b); break;
                        case int n: j.WriteNumber(Cols[i], n); break;
                        case long l: j.WriteNumber(Cols[i], l); break;
                    }
                }
                j.WriteEndObject();
            }
            j.WriteEndArray();
            extra?.Invoke(j);
            j.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}

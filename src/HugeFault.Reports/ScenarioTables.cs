using HugeFault.Scenarios;

namespace HugeFault.Reports;

/// <summary>
/// One table per scenario, one row per policy, showing only what differs: columns equal under every policy move
/// to a note under the table, and the scenario's expectations are shown only for the policy they were written
/// for (<c>host.policy</c>); other policies get a dash.
/// </summary>
public static class ScenarioTables
{
    /// <summary>A column: header, value, and whether it applies to the scenario at all.</summary>
    private sealed record Column(string Header, Func<RunMetrics, string> Cell, Func<IReadOnlyList<RunMetrics>, bool>? Applies = null);

    private static bool HasVms(IReadOnlyList<RunMetrics> rs) => rs.Any(r => r.VmsTotal > 0);
    private static bool HasMigrations(IReadOnlyList<RunMetrics> rs) => rs.Any(r => r.Migrations > 0);

    private static readonly Column[] Columns =
    [
        new("inaccessible", r => Fmt.Bytes(r.InaccessibleBytes)),
        new("good data lost", r => Fmt.Bytes(r.GoodDataLostBytes)),
        new("signalled", r => Fmt.Count(r.TasksSignalled)),
        new("killed", r => Fmt.Count(r.TasksKilled)),
        new("extra memory peak", r => Fmt.Bytes(r.ExtraPeakBytes)),
        new("page tables peak", r => Fmt.Bytes(r.PageTablePeakBytes)),
        new("entries written", r => Fmt.Count(r.EntriesWritten)),
        new("pages copied", r => Fmt.Count(r.PagesCopied)),
        new("mapcount updates", r => Fmt.Count(r.MapcountUpdates)),
        new("pool pages lost", r => Fmt.Count(r.PoolHugePagesLost)),
        new("VMs alive", r => $"{r.VmsSurvived}/{r.VmsTotal}", HasVms),
        new("guest memory lost", r => Fmt.Bytes(r.GuestMemoryLostBytes), HasVms),
        new("host memory lost", r => Fmt.Bytes(r.HostMemoryLostBytes), HasVms),
        new("migrations (refused)", r => $"{r.Migrations} ({r.MigrationsRefused})", HasMigrations),
        new("downtime", r => r.Migrations == 0 ? "–" : Fmt.Duration(r.MigrationDowntimeNs), HasMigrations),
        new("post-copy stall p99", r => r.PostcopyStallP99Ns == 0 ? "–" : Fmt.Duration(r.PostcopyStallP99Ns), HasMigrations),
        new("fake-poisoned on destination", r => Fmt.Bytes(r.FakePoisonedBytes), HasMigrations),
    ];

    /// <summary>The expectation cell: only the policy the scenario was written for is judged.</summary>
    public static string Expectations(Scenario sc, RunMetrics r) =>
        r.Policy != sc.Host.Policy ? "–" : r.ExpectationsHold ? "hold" : $"{r.ExpectationFailures} fail";

    public static TextTable Build(Scenario sc, IReadOnlyList<RunMetrics> rows)
    {
        var shown = new List<Column>();
        var same = new List<string>();
        foreach (var c in Columns)
        {
            if (c.Applies is { } a && !a(rows)) continue;
            var values = rows.Select(c.Cell).Distinct().ToList();
            if (rows.Count > 1 && values.Count == 1) same.Add($"{c.Header} {values[0]}");
            else shown.Add(c);
        }
        bool ownPolicyRan = rows.Any(r => r.Policy == sc.Host.Policy);
        var cols = new List<TextColumn> { new("policy", Right: false) };
        cols.AddRange(shown.Select(c => new TextColumn(c.Header)));
        if (ownPolicyRan) cols.Add(new TextColumn($"expectations ({sc.Host.Policy})"));
        var t = new TextTable($"{sc.Name} [{sc.File}]", cols);
        foreach (var r in rows)
        {
            var cells = new List<TextCell> { r.Policy };
            cells.AddRange(shown.Select(c => (TextCell)c.Cell(r)));
            if (ownPolicyRan) cells.Add(Expectations(sc, r));
            t.Row(cells.ToArray());
        }
        if (same.Count > 0) t.Notes.Add("Same under every policy: " + string.Join(", ", same) + ".");
        if (shown.Count == 0) t.Notes.Add("No measured cost differs between the policies in this scenario.");
        return t;
    }
}

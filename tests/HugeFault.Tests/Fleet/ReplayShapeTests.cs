using CsCheck;
using HugeFault.Fleet;
using HugeFault.Fleet.Dram;
using HugeFault.Fleet.Replay;
using HugeFault.Tests.Cli;
using Microsoft.Data.Sqlite;

namespace HugeFault.Tests.Fleet;

/// <summary>Replay groups errors of one DIMM row, column or bank into one fault whose lines are all bad from its first error.</summary>
public class ReplayShapeTests
{
    private static readonly string Dir = Path.Combine(Path.GetTempPath(), "hugefault-replay-shape-tests", Guid.NewGuid().ToString("N"));
    private static string Example(string name) => Path.Combine(CliProcess.RepoRoot(), "docs/examples", name);

    private static string Db(string name, string sql)
    {
        Directory.CreateDirectory(Dir);
        string path = Path.Combine(Dir, name);
        using var db = new SqliteConnection($"Data Source={path};Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
        return path;
    }

    [Fact]
    public void A_row_fault_is_one_multi_page_event_at_its_first_error_and_panics_the_host_under_userspace_migrate()
    {
        string sql = File.ReadAllText(Example("ras-row-fault.sql"));
        var shipped = MemoryErrorLogs.Read(Example("ras-row-fault.db"));
        var built = MemoryErrorLogs.Read(Db("row.db", sql));
        Assert.Null(shipped.Error);
        Assert.Equal(built.Errors.Select(e => (e.Address, e.Dram)), shipped.Errors.Select(e => (e.Address, e.Dram)));

        var config = new FleetConfig();
        var host = ReplayHost.Default(config);
        var r = ErrorReplay.Run(shipped, host, config);
        var row = r.Errors[0].Shape!;
        Assert.Equal((DramFaultMode.Row, 3, 16L, 1L, 0), (row.Mode, row.Errors, row.Pages, row.Regions, row.Lead));
        Assert.All(r.Errors.Take(3), e => Assert.Equal(0, e.Shape!.Lead));
        Assert.False(r.Errors[3].Shape!.Located);

        var um = r.Totals.Single(t => t.Policy == "userspace-migrate");
        Assert.Equal((1, host.Vms), (um.HostPanics, um.VmsKilled));
        Assert.True(r.Errors[0].Outcomes![r.Policies.ToList().IndexOf("userspace-migrate")].HostPanicked);
        var hgm = r.Totals.Single(t => t.Policy == "hgm");
        Assert.Equal(0, hgm.HostPanics);
        Assert.Equal((16 + 1) * 4096L, hgm.GuestLostBytes); // the row's 16 pages, plus the lone line in VM 19

        // The same errors without their locations are three separate lines: no multi-page event, no panic.
        var bare = shipped with { Errors = shipped.Errors.Select(e => e with { Dram = null }).ToList() };
        var single = ErrorReplay.Run(bare, host, config);
        Assert.Equal(0, single.Totals.Single(t => t.Policy == "userspace-migrate").HostPanics);
        Assert.All(single.Errors, e => Assert.Equal(1, e.Shape!.Pages));

        var cli = CliProcess.InProcess("replay", Example("ras-row-fault.db"), "--policy", "userspace-migrate,hgm");
        Assert.Equal(0, cli.Exit);
        string text = cli.Out.Replace("\n", " ");
        Assert.Contains("3 errors in row faults", text);
        Assert.Contains("host panic", text);
    }

    [Fact]
    public void A_log_without_locations_replays_single_lines_and_says_so()
    {
        var r = CliProcess.InProcess("replay", Example("mcelog.txt"), "--policy", "mainline");
        Assert.Equal(0, r.Exit);
        Assert.Contains("Note: 2 errors with an address but no DIMM row/column in the log are replayed as one bad line each", r.Out.Replace("\n", " "));
        Assert.DoesNotContain("Faults read off", r.Out);
    }

    [Fact]
    public void A_malformed_location_field_is_refused_naming_the_row()
    {
        string db = Db("bad.db", File.ReadAllText(Example("ras-row-fault.sql")).Replace("Row:0x36c6 Column:0x268", "Row:0xzz Column:0x268"));
        var r = CliProcess.InProcess("replay", db);
        Assert.Equal(2, r.Exit);
        Assert.Equal("", r.Out);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("bad.db mc_event row id=3: DRAM location field 'Row:0xzz' is not a decimal or 0x-hexadecimal number", r.Err);
    }

    [Fact]
    public void Column_and_bank_faults_spoil_the_lines_the_address_map_gives_them()
    {
        static MemoryErrorRecord E(int i, long row, long col) =>
            new($"t{i}", DateTimeOffset.FromUnixTimeSeconds(i), (ulong)(200L << 30) + (ulong)i * 64, false, "d", new DramLocation("d", 0, 1, row, col));
        var server = new FleetConfig().Server;
        var column = FaultShapes.Classify([(E(0, 5, 9), 200), (E(1, 6, 9), 200)], server);
        var bank = FaultShapes.Classify([(E(0, 5, 9), 200), (E(1, 6, 10), 200)], server);
        var cell = FaultShapes.Classify([(E(0, 5, 9), 200), (E(1, 5, 9), 200)], server);
        // Default map: row bits 0-8 lie inside a 1 GiB frame, one rank-row is 128 lines over 16 pages of one 2 MiB region.
        Assert.Equal((DramFaultMode.Column, 512L, 512L), (column[0]!.Mode, column[0]!.Pages, column[0]!.Regions));
        Assert.Equal((DramFaultMode.Bank, 512L * 16, 512L), (bank[0]!.Mode, bank[0]!.Pages, bank[0]!.Regions));
        Assert.Equal((DramFaultMode.Bit, 1L), (cell[0]!.Mode, cell[0]!.Pages));
    }

    [Fact]
    public void Physical_to_line_inverts_the_address_map()
    {
        var map = new FleetAddressMap(new FleetConfig().Server);
        Gen.ULong[0, (1UL << map.LineBits) - 1].Sample(line =>
            FaultShapes.PhysicalToLine(map, map.LineToPhysical(line) | 0x3f) == line);
        Assert.Null(FaultShapes.PhysicalToLine(map, 1UL << (map.LineBits + 6)));
    }
}

/// <summary>The replay test log in the tables Debian's packaged rasdaemon creates (opt-in: it installs and runs rasdaemon).</summary>
public class PackagedRasdaemonTests
{
    [Fact]
    public void A_database_created_by_the_packaged_rasdaemon_replays_like_the_ras_record_c_schema()
    {
        // Opt-in (.ci/run sets HUGEFAULT_RASDAEMON=1 when tools/rasdaemon/install.sh succeeds): rasdaemon runs for about
        // a second in a private mount namespace (tools/rasdaemon/schema.sh) and needs root and the kernel's RAS tracepoints.
        if (Environment.GetEnvironmentVariable("HUGEFAULT_RASDAEMON") != "1")
            Assert.Skip("HUGEFAULT_RASDAEMON is not 1: the packaged-rasdaemon schema test (tools/rasdaemon/schema.sh) is opt-in; .ci/run enables it when the rasdaemon package installs");
        string root = CliProcess.RepoRoot(), dir = Path.Combine(Path.GetTempPath(), "hugefault-rasdaemon", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string db = Path.Combine(dir, "ras-mc_event.db");
        var (exit, output) = ClusterScriptTests.Bash(Path.Combine(root, "tools/rasdaemon/schema.sh"), 60_000, db);
        if (exit != 0) Assert.Skip($"the packaged rasdaemon could not create a database here: {output.Trim().Split('\n').Last()}");
        // The row-fault example's rows, inserted into the packaged daemon's own mc_event table.
        string inserts = string.Join("\n", File.ReadAllLines(Path.Combine(root, "docs/examples/ras-row-fault.sql")).Where(l => l.StartsWith("INSERT", StringComparison.Ordinal)));
        using (var c = new SqliteConnection($"Data Source={db};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = inserts;
            cmd.ExecuteNonQuery();
        }
        var packaged = MemoryErrorLogs.Read(db);
        var shipped = MemoryErrorLogs.Read(Path.Combine(root, "docs/examples/ras-row-fault.db"));
        Assert.Null(packaged.Error);
        Assert.Equal(shipped.Errors.Select(e => (e.Time, e.Address, e.Dram)), packaged.Errors.Select(e => (e.Time, e.Address, e.Dram)));
        var config = new FleetConfig();
        var r = ErrorReplay.Run(packaged, ReplayHost.Default(config), config);
        Assert.Equal(1, r.Totals.Single(t => t.Policy == "userspace-migrate").HostPanics);
    }
}

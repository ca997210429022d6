using HugeFault.Fleet;
using HugeFault.Fleet.Replay;
using HugeFault.Tests.Cli;
using Microsoft.Data.Sqlite;

namespace HugeFault.Tests.Fleet;

/// <summary><c>hugefault replay</c>: rasdaemon databases (its real schema) and mcelog text through every policy; bad logs are one precise line.</summary>
public class ReplayTests
{
    private static readonly string Dir = Path.Combine(Path.GetTempPath(), "hugefault-replay-tests", Guid.NewGuid().ToString("N"));

    // The two tables as rasdaemon's ras-record.c creates them (CREATE TABLE IF NOT EXISTS name (field type, ...)).
    private const string McEvent = "CREATE TABLE IF NOT EXISTS mc_event (id INTEGER PRIMARY KEY, timestamp TEXT, err_count INTEGER, err_type TEXT, err_msg TEXT, label TEXT, mc INTEGER, top_layer INTEGER, middle_layer INTEGER, lower_layer INTEGER, address INTEGER, grain INTEGER, syndrome INTEGER, driver_detail TEXT)";
    private const string MceRecord = "CREATE TABLE IF NOT EXISTS mce_record (id INTEGER PRIMARY KEY, timestamp TEXT, mcgcap INTEGER, mcgstatus INTEGER, status INTEGER, addr INTEGER, misc INTEGER, ip INTEGER, tsc INTEGER, walltime INTEGER, cpu INTEGER, cpuid INTEGER, apicid INTEGER, socketid INTEGER, cs INTEGER, bank INTEGER, cpuvendor INTEGER, bank_name TEXT, error_msg TEXT, mcgstatus_msg TEXT, mcistatus_msg TEXT, mcastatus_msg TEXT, user_action TEXT, mc_location TEXT)";

    private static string Db(string name, params string[] sql)
    {
        Directory.CreateDirectory(Dir);
        string path = Path.Combine(Dir, name);
        using var db = new SqliteConnection($"Data Source={path};Pooling=False");
        db.Open();
        foreach (var s in sql)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = s;
            cmd.ExecuteNonQuery();
        }
        return path;
    }

    private static string McRow(string time, string type, long address) =>
        $"INSERT INTO mc_event VALUES (NULL, '{time}', 1, '{type}', 'memory scrubbing error', 'DIMM_A1', 0, 2, 0, -1, {address}, 64, 0, '')";

    private const long GiB = 1L << 30;

    [Fact]
    public void A_rasdaemon_database_is_replayed_through_every_policy_with_each_error_placed_on_its_1g_page()
    {
        // VM 3's page (GiB 64 + 3·16 + 5) twice, a free pool page, host kernel memory, a corrected error, and a consumed MCE in VM 10.
        string db = Db("ras.db", McEvent, MceRecord,
            McRow("2024-03-02 04:11:09 +0000", "Corrected", 117 * GiB + 0x40),
            McRow("2024-03-02 04:20:41 +0000", "Uncorrected", 117 * GiB + 0x1234540),
            McRow("2024-03-03 17:02:55 +0000", "Uncorrected", 117 * GiB + 0xF000080),
            McRow("2024-05-19 09:45:03 +0000", "Uncorrected", 900 * GiB + 0xABC000),
            McRow("2024-06-30 22:13:37 +0000", "Fatal", 2 * GiB + 0x1000),
            $"INSERT INTO mce_record (timestamp, mcgstatus, status, addr, socketid, bank) VALUES ('2024-08-11 03:33:21 +0000', 5, {unchecked((long)0xBD80000000100134UL)}, {226 * GiB + 0x42000}, 1, 1)");
        var log = MemoryErrorLogs.Read(db);
        Assert.Null(log.Error);
        Assert.Equal(1, log.Corrected);
        Assert.Equal(5, log.Errors.Count);
        Assert.True(log.Errors.Single(e => e.Source.Contains("mce_record", StringComparison.Ordinal)).Consumed);

        var config = new FleetConfig();
        var r = ErrorReplay.Run(log, ReplayHost.Default(config), config);
        Assert.Equal(["GiB 117: VM 3", "GiB 117: VM 3", "GiB 900: free 1 GiB page", "GiB 2: host kernel / 4 KiB memory", "GiB 226: VM 10"], r.Errors.Select(e => e.Where));
        var main = r.Totals.Single(t => t.Policy == "mainline");
        var hgm = r.Totals.Single(t => t.Policy == "hgm");
        // mainline loses each VM page whole (the 1 GiB folio is unmapped); HGM only the 4 KiB subpages.
        Assert.Equal(2 * GiB, main.GuestLostBytes);
        Assert.True(hgm.GuestLostBytes < main.GuestLostBytes / 1000);
        // Outside the pool and on a free page every policy quarantines the same 4 KiB.
        foreach (int i in new[] { 2, 3 })
            Assert.All(r.Errors[i].Outcomes!, o => Assert.Equal((0L, 4096L), (o.GuestLostBytes, o.StrandedBytes)));

        var cli = CliProcess.InProcess("replay", db, "--policy", "mainline,hgm");
        Assert.Equal(0, cli.Exit);
        Assert.Contains("5 uncorrected errors from the rasdaemon log (1 corrected ones ignored)", cli.Out.Replace("\n", " "));
        Assert.Contains("what each policy would have cost", cli.Out);
        Assert.Contains("On this log mainline would have killed", cli.Out);
    }

    [Fact]
    public void The_shipped_examples_replay_and_mcelog_text_agrees_with_the_same_errors_in_rasdaemon()
    {
        string root = CliProcess.RepoRoot();
        var db = CliProcess.InProcess("replay", Path.Combine(root, "docs/examples/ras-mc_event.db"));
        Assert.Equal(0, db.Exit);
        foreach (var p in FleetPolicies.Names) Assert.Contains(p, db.Out);
        var text = MemoryErrorLogs.Read(Path.Combine(root, "docs/examples/mcelog.txt"));
        Assert.Null(text.Error);
        Assert.Equal((2, 1L), (text.Errors.Count, text.Corrected));
        Assert.Equal([(0x1d41234540UL, false), (0x3880042000UL, true)], text.Errors.Select(e => (e.Address!.Value, e.Consumed)));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1709353241), text.Errors[0].Time);
        Assert.Equal("mcelog.txt:2", text.Errors[0].Source);
    }

    [Fact]
    public void Malformed_logs_are_refused_with_one_line_naming_the_row_or_line()
    {
        Directory.CreateDirectory(Dir);
        void Refused(string path, string message, params string[] extra)
        {
            var r = CliProcess.InProcess(["replay", path, .. extra]);
            Assert.Equal(2, r.Exit);
            Assert.Equal("", r.Out);
            var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Single(lines);
            Assert.Contains(message, lines[0]);
        }
        Refused(Db("other.db", "CREATE TABLE t (x INTEGER)"), "no rasdaemon table mc_event or mce_record (tables: t)");
        Refused(Db("cols.db", "CREATE TABLE mc_event (id INTEGER PRIMARY KEY, timestamp TEXT, err_type TEXT, label TEXT, mc INTEGER, top_layer INTEGER, middle_layer INTEGER, lower_layer INTEGER)"), "table mc_event has no column 'address'");
        Refused(Db("type.db", McEvent, McRow("2024-03-02 04:20:41 +0000", "Uncorrected", GiB), McRow("2024-03-02 04:20:41 +0000", "Weird", GiB)), "mc_event row id=2: err_type 'Weird'");
        Refused(Db("time.db", McEvent, McRow("yesterday", "Uncorrected", GiB)), "mc_event row id=1: timestamp 'yesterday'");
        Refused(Db("addr.db", McEvent, "INSERT INTO mc_event (timestamp, err_type, address) VALUES ('2024-03-02 04:20:41 +0000', 'Uncorrected', 'x12')"), "mc_event row id=1: address 'x12' is not an integer");
        Refused(Db("big.db", McEvent, McRow("2024-03-02 04:20:41 +0000", "Uncorrected", 4096 * GiB)), "address 0x40000000000 is beyond the stated host's 1024 GiB", "--policy", "mainline");

        string text = Path.Combine(Dir, "mcelog.txt");
        File.WriteAllText(text, "MCE 0\nCPU 1 BANK 7\nMISC 86 ADDR 1d41234540\nTIME 1709353241\nSTATUS bd000000000000c2 MCGSTATUS 0\n\nMCE 1\nCPU 2 BANK 7\nADDR zz\nSTATUS bd000000000000c2\n");
        Refused(text, "mcelog.txt:9: ADDR 'zz' is not hexadecimal");
        File.WriteAllText(text, "MCE 0\nCPU 1 BANK 7\nMISC 86 ADDR 1d41234540\n");
        Refused(text, "mcelog.txt:1: MCE record without a STATUS line");
        File.WriteAllText(text, "hello\nworld\n");
        Refused(text, "neither a rasdaemon database nor mcelog output");
        Refused(Path.Combine(Dir, "missing.db"), "missing.db: file not found");
    }
}

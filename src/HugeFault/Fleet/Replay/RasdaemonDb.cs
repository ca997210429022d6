using System.Globalization;
using Microsoft.Data.Sqlite;

namespace HugeFault.Fleet.Replay;

/// <summary>
/// rasdaemon's SQLite database (<c>/var/lib/rasdaemon/ras-mc_event.db</c>), tables as its ras-record.c creates them:
/// <c>mc_event</c> (EDAC <c>ras:mc_event</c>: timestamp, err_count, err_type, err_msg, label, mc, top/middle/lower_layer,
/// address, grain, syndrome, driver_detail) and <c>mce_record</c> (x86 <c>mce:mce_record</c>: timestamp, mcgcap, mcgstatus,
/// status, addr, misc, ip, tsc, walltime, cpu, cpuid, apicid, socketid, cs, bank, cpuvendor, then decoded text). Rows of
/// err_type Uncorrected, Fatal or Deferred, and MCE rows with MCi_STATUS.UC, are the uncorrected errors; EDAC rows carry
/// no action-required bit and are taken as found by the scrub or the memory controller (action optional).
/// </summary>
public static class RasdaemonDb
{
    private static readonly string[] McEventColumns = ["id", "timestamp", "err_type", "label", "mc", "top_layer", "middle_layer", "lower_layer", "address"];
    private static readonly string[] MceColumns = ["id", "timestamp", "mcgstatus", "status", "addr", "socketid", "bank"];

    public static MemoryErrorLog Read(string path)
    {
        string name = Path.GetFileName(path);
        try
        {
            using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            db.Open();
            var tables = Tables(db);
            if (!tables.ContainsKey("mc_event") && !tables.ContainsKey("mce_record"))
                return MemoryErrorLog.Fail("rasdaemon", $"{name}: no rasdaemon table mc_event or mce_record (tables: {(tables.Count == 0 ? "none" : string.Join(", ", tables.Keys))})");
            foreach (var (table, need) in new[] { ("mc_event", McEventColumns), ("mce_record", MceColumns) })
                if (tables.TryGetValue(table, out var cols) && need.FirstOrDefault(c => !cols.Contains(c)) is { } missing)
                    return MemoryErrorLog.Fail("rasdaemon", $"{name}: table {table} has no column '{missing}' (not rasdaemon's schema)");
            var errors = new List<MemoryErrorRecord>();
            long corrected = 0;
            string? problem = null;
            if (tables.TryGetValue("mc_event", out var mcCols)) problem = ReadMcEvent(db, name, mcCols, errors, ref corrected);
            if (problem is null && tables.ContainsKey("mce_record")) problem = ReadMce(db, name, errors, ref corrected);
            return problem is null ? new MemoryErrorLog("rasdaemon", errors, corrected) : MemoryErrorLog.Fail("rasdaemon", problem);
        }
        catch (SqliteException e)
        {
            return MemoryErrorLog.Fail("rasdaemon", $"{name}: not a readable SQLite database ({e.Message})");
        }
    }

    private static Dictionary<string, HashSet<string>> Tables(SqliteConnection db)
    {
        var names = new List<string>();
        using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name";
            using var r = cmd.ExecuteReader();
            while (r.Read()) names.Add(r.GetString(0));
        }
        var result = new Dictionary<string, HashSet<string>>();
        foreach (var t in names)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"SELECT name FROM pragma_table_info('{t.Replace("'", "''")}')";
            using var r = cmd.ExecuteReader();
            var cols = new HashSet<string>();
            while (r.Read()) cols.Add(r.GetString(0));
            result[t] = cols;
        }
        return result;
    }

    private static string? ReadMcEvent(SqliteConnection db, string name, HashSet<string> columns, List<MemoryErrorRecord> into, ref long corrected)
    {
        using var cmd = db.CreateCommand();
        // err_msg and driver_detail carry the EDAC driver's decoded DRAM location (rasdaemon's ras-mc-handler.c stores the
        // tracepoint's msg and driver_detail); older databases may lack driver_detail.
        string Optional(string c) => columns.Contains(c) ? c : "''";
        cmd.CommandText = $"SELECT id, timestamp, err_type, label, mc, top_layer, middle_layer, lower_layer, address, {Optional("err_msg")}, {Optional("driver_detail")} FROM mc_event ORDER BY id";
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            string where = $"{name} mc_event row id={Text(r, 0)}";
            string type = Text(r, 2);
            if (type.Equals("Corrected", StringComparison.OrdinalIgnoreCase) || type.Equals("Info", StringComparison.OrdinalIgnoreCase)) { corrected++; continue; }
            if (!(type.Equals("Uncorrected", StringComparison.OrdinalIgnoreCase) || type.Equals("Fatal", StringComparison.OrdinalIgnoreCase) || type.Equals("Deferred", StringComparison.OrdinalIgnoreCase)))
                return $"{where}: err_type '{type}' is not one of Corrected, Uncorrected, Deferred, Fatal, Info";
            var (time, terr) = Time(r, 1, where);
            if (terr is not null) return terr;
            if (!Integer(r, 8, out long addr)) return $"{where}: address '{Text(r, 8)}' is not an integer";
            string loc = $"{(Text(r, 3) is { Length: > 0 } l ? l + " " : "")}mc{Text(r, 4)} {Text(r, 5)}:{Text(r, 6)}:{Text(r, 7)}";
            var (dram, derr) = DramLocations.Parse(loc, Text(r, 9) + " " + Text(r, 10));
            if (derr is not null) return $"{where}: {derr}";
            into.Add(new MemoryErrorRecord(where, time, addr > 0 ? (ulong)addr : null, false, loc, dram));
        }
        return null;
    }

    private static string? ReadMce(SqliteConnection db, string name, List<MemoryErrorRecord> into, ref long corrected)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT id, timestamp, mcgstatus, status, addr, socketid, bank FROM mce_record ORDER BY id";
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            string where = $"{name} mce_record row id={Text(r, 0)}";
            if (!Integer(r, 3, out long st)) return $"{where}: status '{Text(r, 3)}' is not an integer";
            ulong status = unchecked((ulong)st);
            if (!MemoryErrorLogs.Bit(status, MemoryErrorLogs.StatusVal)) return $"{where}: status {status:x} has MCi_STATUS.VAL clear (not a logged error)";
            if (!MemoryErrorLogs.Bit(status, MemoryErrorLogs.StatusUc)) { corrected++; continue; }
            var (time, terr) = Time(r, 1, where);
            if (terr is not null) return terr;
            if (!Integer(r, 4, out long addr)) return $"{where}: addr '{Text(r, 4)}' is not an integer";
            bool addrValid = MemoryErrorLogs.Bit(status, MemoryErrorLogs.StatusAddrV);
            bool consumed = MemoryErrorLogs.Bit(status, MemoryErrorLogs.StatusS) && MemoryErrorLogs.Bit(status, MemoryErrorLogs.StatusAr);
            into.Add(new MemoryErrorRecord(where, time, addrValid && addr != 0 ? unchecked((ulong)addr) : null, consumed, $"socket {Text(r, 5)} bank {Text(r, 6)}"));
        }
        return null;
    }

    private static string Text(SqliteDataReader r, int i) => r.IsDBNull(i) ? "" : Convert.ToString(r.GetValue(i), CultureInfo.InvariantCulture) ?? "";

    private static bool Integer(SqliteDataReader r, int i, out long v)
    {
        v = 0;
        if (r.IsDBNull(i)) return true;
        object o = r.GetValue(i);
        if (o is long l) { v = l; return true; }
        return o is string s && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out v);
    }

    // rasdaemon writes "2024-11-14 08:00:00 +0000" (strftime "%Y-%m-%d %H:%M:%S %z").
    private static (DateTimeOffset?, string?) Time(SqliteDataReader r, int i, string where)
    {
        string s = Text(r, i).Trim();
        if (s.Length == 0) return (null, null);
        string[] formats = ["yyyy-MM-dd HH:mm:ss zzz", "yyyy-MM-dd HH:mm:ss zz", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm:ss.FFFFFFF zzz"];
        string norm = s.Length > 5 && (s[^5] == '+' || s[^5] == '-') && char.IsDigit(s[^1]) ? s[..^2] + ":" + s[^2..] : s;
        if (DateTimeOffset.TryParseExact(norm, formats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)) return (t.ToUniversalTime(), null);
        return (null, $"{where}: timestamp '{s}' is not rasdaemon's 'YYYY-MM-DD hh:mm:ss +zzzz'");
    }
}

using System.Globalization;
using System.Text.RegularExpressions;

namespace HugeFault.Fleet.Replay;

/// <summary>
/// mcelog's text records (what <c>mcelog</c> writes to <c>/var/log/mcelog</c>): each starts with a line <c>MCE N</c>
/// (optionally after "Hardware event. This is not a software error."), then lines such as <c>CPU c BANK b</c>,
/// <c>MISC m ADDR a</c> (hex), <c>TIME t</c> (Unix seconds), <c>STATUS s MCGSTATUS g</c> (hex) and
/// <c>MCGCAP … APICID … SOCKETID n</c>. A record is an uncorrected error when MCi_STATUS.UC is set; its address counts
/// when MCi_STATUS.ADDRV is; it was consumed (action required) when S and AR are set.
/// </summary>
public static partial class McelogText
{
    [GeneratedRegex(@"^MCE\s+(\d+)\s*$")] private static partial Regex Start();
    [GeneratedRegex(@"\b(ADDR|MISC|STATUS|MCGSTATUS|TIME|SOCKETID|SOCKET|BANK|CPU)\s+(\S+)")] private static partial Regex Field();

    public static MemoryErrorLog Read(string path)
    {
        string name = Path.GetFileName(path);
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return MemoryErrorLog.Fail("mcelog", $"{name}: cannot read ({e.Message})"); }
        var errors = new List<MemoryErrorRecord>();
        long corrected = 0;
        Dictionary<string, (string Value, int Line)>? rec = null;
        int start = 0, records = 0;
        string? Finish()
        {
            if (rec is null) return null;
            records++;
            string where = $"{name}:{start}";
            if (!rec.TryGetValue("STATUS", out var st)) return $"{where}: MCE record without a STATUS line (truncated record?)";
            if (!Hex(st.Value, out ulong status)) return $"{name}:{st.Line}: STATUS '{st.Value}' is not hexadecimal";
            if (!MemoryErrorLogs.Bit(status, MemoryErrorLogs.StatusUc)) { corrected++; return null; }
            ulong? addr = null;
            if (rec.TryGetValue("ADDR", out var a))
            {
                if (!Hex(a.Value, out ulong v)) return $"{name}:{a.Line}: ADDR '{a.Value}' is not hexadecimal";
                if (MemoryErrorLogs.Bit(status, MemoryErrorLogs.StatusAddrV)) addr = v;
            }
            DateTimeOffset? time = null;
            if (rec.TryGetValue("TIME", out var t))
            {
                if (!long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long secs)) return $"{name}:{t.Line}: TIME '{t.Value}' is not Unix seconds";
                time = DateTimeOffset.FromUnixTimeSeconds(secs);
            }
            bool consumed = MemoryErrorLogs.Bit(status, MemoryErrorLogs.StatusS) && MemoryErrorLogs.Bit(status, MemoryErrorLogs.StatusAr);
            string socket = rec.TryGetValue("SOCKETID", out var s) ? s.Value : rec.TryGetValue("SOCKET", out var s2) ? s2.Value : "?";
            string bank = rec.TryGetValue("BANK", out var b) ? b.Value : "?";
            errors.Add(new MemoryErrorRecord(where, time, addr, consumed, $"socket {socket} bank {bank}"));
            return null;
        }
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (Start().IsMatch(line))
            {
                if (Finish() is { } e) return MemoryErrorLog.Fail("mcelog", e);
                rec = new Dictionary<string, (string, int)>();
                start = i + 1;
                continue;
            }
            if (rec is null) continue;
            foreach (Match m in Field().Matches(line))
                rec.TryAdd(m.Groups[1].Value, (m.Groups[2].Value, i + 1));
        }
        if (Finish() is { } last) return MemoryErrorLog.Fail("mcelog", last);
        if (records == 0) return MemoryErrorLog.Fail("mcelog", $"{name}: neither a rasdaemon database nor mcelog output (no 'MCE N' record lines)");
        return new MemoryErrorLog("mcelog", errors, corrected);
    }

    private static bool Hex(string s, out ulong v) =>
        ulong.TryParse(s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? s[2..] : s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v);
}

using System.Globalization;
using System.Text.RegularExpressions;
using HugeFault.Fleet.Dram;

namespace HugeFault.Fleet.Replay;

/// <summary>
/// Where on its DIMM an error sat, as the EDAC driver decoded it: the DIMM (rasdaemon's label, mc and layers), rank,
/// bank (bank group and bank address folded together) and the DRAM row and column.
/// </summary>
public readonly record struct DramLocation(string Dimm, long Rank, long Bank, long Row, long Column);

/// <summary>
/// Reads the DRAM location an EDAC driver wrote into an mc_event's message. Two spellings reach rasdaemon's
/// <c>err_msg</c>/<c>driver_detail</c> columns: the APEI/GHES one (<c>cper_mem_err_location()</c> in
/// drivers/firmware/efi/cper.c via ghes_edac: <c>node:0 card:2 module:0 rank:1 bank:5 row:14022 column:640</c>, decimal,
/// with <c>bank_group:</c>/<c>bank_address:</c> on DDR4 platforms) and the Intel skx/i10nm one
/// (<c>skx_mce_output_error()</c> in drivers/edac/skx_common.c: <c>PhysicalRankId:0x1 Row:0x36c6 Column:0x280 Bank:0x1
/// BankGroup:0x2</c>, hexadecimal).
/// </summary>
public static partial class DramLocations
{
    [GeneratedRegex(@"\b(rank|physicalrankid|bank|bank_address|bank_group|bankgroup|row|col|column)\s*:\s*([^\s,;]*)", RegexOptions.IgnoreCase)]
    private static partial Regex Field();

    /// <summary>
    /// The location in <paramref name="text"/> (null when it lacks a row, a column or a bank: such an error replays as one
    /// line), or the problem: a field whose value is not a number.
    /// </summary>
    public static (DramLocation? Location, string? Error) Parse(string dimm, string text)
    {
        long? rank = null, bank = null, group = null, row = null, col = null;
        foreach (Match m in Field().Matches(text))
        {
            string key = m.Groups[1].Value.ToLowerInvariant(), value = m.Groups[2].Value;
            bool hex = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
            if (!(hex ? long.TryParse(value[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long v)
                      : long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out v)) || v < 0)
                return (null, $"DRAM location field '{m.Groups[1].Value}:{value}' is not a decimal or 0x-hexadecimal number");
            switch (key)
            {
                case "rank" or "physicalrankid": rank = v; break;
                case "bank" or "bank_address": bank = v; break;
                case "bank_group" or "bankgroup": group = v; break;
                case "row": row = v; break;
                default: col = v; break;
            }
        }
        if (row is null || col is null || (bank is null && group is null)) return (null, null);
        return (new DramLocation(dimm, rank ?? 0, (group ?? 0) << 32 | (bank ?? 0), row.Value, col.Value), null);
    }
}

/// <summary>The fault an error belongs to and the lines it spoils in the error's 1 GiB frame.</summary>
/// <param name="Mode">Bit (one line), row, column or bank.</param>
/// <param name="Errors">Errors of the log grouped into this fault.</param>
/// <param name="Pages">Bad 4 KiB pages of the fault in this frame.</param>
/// <param name="Regions">2 MiB regions holding them.</param>
/// <param name="Lead">Index (in time order) of the fault's first error in this frame: it carries the event; later ones are its lines being reported again.</param>
/// <param name="Located">The log gave the error's DIMM row and column.</param>
public sealed record ReplayShape(DramFaultMode Mode, int Errors, long Pages, long Regions, int Lead, bool Located)
{
    public string Describe(bool lead) => !Located ? "one line (the log gives no DIMM row/column)"
        : Mode == DramFaultMode.Bit ? $"one line ({(Errors == 1 ? "the only error" : $"{Errors} errors")} of its cell)"
        : $"{Mode.Name()} fault ({Errors} errors): {Pages} bad 4 KiB page{(Pages == 1 ? "" : "s")} in {Regions} 2 MiB region{(Regions == 1 ? "" : "s")} of this GiB{(lead ? "" : ", handled at its first error")}";
}

/// <summary>
/// Groups a log's errors into DRAM faults, as field studies of DRAM errors classify them: errors of one DIMM, rank and bank
/// in one row at several columns are a row fault, in one column at several rows a column fault, at several rows and
/// columns a bank fault; errors of one cell (or a lone error) are one line. A fault's lines are laid out in physical memory by
/// the fleet's address map (<see cref="FleetAddressMap"/>, server.address_map), starting from the physical address of its
/// first error, so a row fault has all its lines (16 4 KiB pages of one rank-row on the default map) present from the first
/// report, as a DRAM row fault is in hardware; the log reports them one by one, later, or never.
/// </summary>
public static class FaultShapes
{
    /// <summary>One shape per error of <paramref name="ordered"/> (time order), for errors with an address.</summary>
    public static ReplayShape?[] Classify(IReadOnlyList<(MemoryErrorRecord Error, long Frame)> ordered, FleetServerConfig server)
    {
        var map = new FleetAddressMap(server);
        var shapes = new ReplayShape?[ordered.Count];
        var groups = new Dictionary<(string, long, long), List<int>>();
        for (int i = 0; i < ordered.Count; i++)
        {
            var (e, f) = ordered[i];
            if (f < 0) continue;
            if (e.Dram is not { } d) { shapes[i] = new ReplayShape(DramFaultMode.Bit, 1, 1, 1, i, false); continue; }
            var key = (d.Dimm, d.Rank, d.Bank);
            if (!groups.TryGetValue(key, out var list)) groups[key] = list = [];
            list.Add(i);
        }
        Span<ulong> frameBasis = stackalloc ulong[64], inFrame = stackalloc ulong[64];
        foreach (var members in groups.Values)
        {
            int rows = members.Select(i => ordered[i].Error.Dram!.Value.Row).Distinct().Count();
            int cols = members.Select(i => ordered[i].Error.Dram!.Value.Column).Distinct().Count();
            var mode = (rows, cols) switch { (1, 1) => DramFaultMode.Bit, (1, _) => DramFaultMode.Row, (_, 1) => DramFaultMode.Column, _ => DramFaultMode.Bank };
            ulong wild = mode switch
            {
                DramFaultMode.Row => map.FieldMask(LineField.Column),
                DramFaultMode.Column => map.FieldMask(LineField.Row),
                DramFaultMode.Bank => map.FieldMask(LineField.Column) | map.FieldMask(LineField.Row),
                _ => 0,
            };
            var lead = new Dictionary<long, int>();
            foreach (int i in members)
            {
                var (e, f) = ordered[i];
                bool first = lead.TryAdd(f, i);
                long pages = 1, regions = 1;
                if (wild != 0 && PhysicalToLine(map, e.Address!.Value) is { } line)
                {
                    var fr = map.Analyze(line & ~wild, wild, frameBasis, inFrame);
                    pages = fr.PagesPerFrame;
                    regions = fr.RegionsPerFrame;
                }
                shapes[i] = new ReplayShape(mode, members.Count, pages, regions, lead[f], true);
            }
        }
        return shapes;
    }

    /// <summary>The line address whose physical address is <paramref name="pa"/>'s cacheline (the map is a GF(2) bijection), or null beyond the map.</summary>
    public static ulong? PhysicalToLine(FleetAddressMap map, ulong pa)
    {
        var cols = map.Columns;
        Span<ulong> pivot = stackalloc ulong[64], tag = stackalloc ulong[64];
        int r = 0;
        for (int i = 0; i < map.LineBits; i++)
        {
            ulong v = cols[i], t = 1UL << i;
            for (int k = 0; k < r; k++)
                if ((v ^ pivot[k]) < v) { v ^= pivot[k]; t ^= tag[k]; }
            if (v == 0) continue;
            int j = r++;
            while (j > 0 && pivot[j - 1] < v) { pivot[j] = pivot[j - 1]; tag[j] = tag[j - 1]; j--; }
            pivot[j] = v; tag[j] = t;
        }
        ulong target = pa & ~63UL, line = 0;
        for (int k = 0; k < r; k++)
            if ((target ^ pivot[k]) < target) { target ^= pivot[k]; line ^= tag[k]; }
        return target == 0 ? line : null;
    }
}

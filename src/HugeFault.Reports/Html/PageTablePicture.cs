using System.Globalization;
using System.Text;
using HugeFault.Mm;

namespace HugeFault.Reports.Html;

/// <summary>
/// SVG pictures of page tables after a scenario: per process and mapping, a bar of its leaves (1 GiB PUD, 2 MiB PMD,
/// 4 KiB PTE; hwpoison entries, poison markers, pages poisoned but still mapped), then zoomed bars of the 1 GiB and
/// the 2 MiB around the first damage, so a 4 KiB hole is visible next to a whole-gigabyte one.
/// </summary>
public static class PageTablePicture
{
    private const int Left = 250, BarW = 640, BarH = 14, Gap = 6, Right = 360;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static readonly (string Css, string Label)[] Legend =
    [
        ("#1b5e20", "1 GiB entry (PUD)"), ("#43a047", "2 MiB entry (PMD)"), ("#a5d6a7", "4 KiB entry (PTE)"),
        ("#d50000", "hwpoison entry"), ("#ff9100", "poison marker"), ("#8e24aa", "poisoned, still mapped"), ("#eeeeee", "not mapped"),
    ];

    private static string Color(LeafRun r) => r.Kind switch
    {
        LeafKind.Hwpoison => "#d50000",
        LeafKind.PoisonMarker => "#ff9100",
        LeafKind.PresentPoisoned when r.Level == PtLevel.Pte => "#8e24aa",
        LeafKind.Other => "#9e9e9e",
        _ => r.Level switch { PtLevel.Pud => "#1b5e20", PtLevel.Pmd => "#43a047", _ => "#a5d6a7" },
    };

    public static string LegendSvg()
    {
        var sb = new StringBuilder();
        int w = 0;
        var items = new StringBuilder();
        foreach (var (css, label) in Legend)
        {
            items.Append(Inv, $"<rect x=\"{w}\" y=\"2\" width=\"14\" height=\"14\" fill=\"{css}\" stroke=\"#555\" stroke-width=\"0.5\"/><text x=\"{w + 18}\" y=\"14\">{Esc(label)}</text>");
            w += 24 + label.Length * 7;
        }
        sb.Append(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"pt-legend\" width=\"{w}\" height=\"20\" viewBox=\"0 0 {w} 20\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">");
        sb.Append(items).Append("</svg>");
        return sb.ToString();
    }

    /// <summary>One SVG for a scenario: a block per policy, a row group per (process, mapping) with leaves.</summary>
    public static string Scenario(IReadOnlyList<(string Policy, PageTableSnapshot Snapshot)> runs)
    {
        var body = new StringBuilder();
        int y = 4, lx = 0;
        foreach (var (css, label) in Legend)
        {
            body.Append(Inv, $"<rect x=\"{lx}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{css}\" stroke=\"#555\" stroke-width=\"0.5\"/><text x=\"{lx + 16}\" y=\"{y + 10}\">{Esc(label)}</text>");
            lx += 28 + label.Length * 6;
        }
        y += 22;
        foreach (var (policy, snap) in runs)
        {
            body.Append(Inv, $"<text x=\"0\" y=\"{y + 12}\" font-weight=\"bold\">{Esc(policy)}</text>");
            y += 18;
            bool any = false;
            foreach (var mm in snap.Mms)
                foreach (var v in mm.Vmas.Where(v => v.Runs.Count > 0 && (v.Hugetlb || v.End - v.Start >= Units.PMD_SIZE)))
                {
                    any = true;
                    y = Mapping(body, y, mm, v);
                }
            if (!any)
            {
                body.Append(Inv, $"<text x=\"12\" y=\"{y + 11}\" fill=\"#555\">no live process maps huge memory at the end</text>");
                y += BarH + Gap;
            }
            y += 6;
        }
        int width = Left + BarW + Right;
        return string.Create(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"pt\" width=\"{width}\" height=\"{y}\" viewBox=\"0 0 {width} {y}\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"11\">") + body + "</svg>";
    }

    private static int Mapping(StringBuilder sb, int y, MmSnapshot mm, VmaSnapshot v)
    {
        string label = $"{mm.Tasks}: {v.Name} ({Fmt.Bytes(v.End - v.Start)}{(v.Hugetlb ? "" : ", not hugetlb")})";
        sb.Append(Inv, $"<text x=\"12\" y=\"{y + 11}\">{Esc(Trim(label, 36))}</text>");
        Bar(sb, y, v.Start, v.End, v.Runs, v.PoisonedMapped);
        sb.Append(Inv, $"<text x=\"{Left + BarW + 8}\" y=\"{y + 11}\">{Esc(Trim(Count(v), 52))}</text>");
        y += BarH + Gap;
        // zoom on the first damage: its 1 GiB (2 MiB cells), then its 2 MiB (4 KiB cells)
        ulong? hit = v.Runs.Where(r => r.Kind is LeafKind.Hwpoison or LeafKind.PoisonMarker && r.Level != PtLevel.Pud).Select(r => (ulong?)r.Start).FirstOrDefault()
                     ?? v.PoisonedMapped.Select(a => (ulong?)a).FirstOrDefault();
        if (hit is not { } at) return y;
        foreach (ulong size in new[] { Units.PUD_SIZE, Units.PMD_SIZE })
        {
            ulong lo = Math.Max(v.Start, at & ~(size - 1)), hi = Math.Min(v.End, lo + size);
            if (hi - lo >= v.End - v.Start && size == Units.PUD_SIZE) continue; // the mapping is that 1 GiB already
            sb.Append(Inv, $"<text x=\"24\" y=\"{y + 11}\" fill=\"#555\">zoom: the {Fmt.Bytes(size)} at +{Hex(lo - v.Start)}</text>");
            Bar(sb, y, lo, hi, v.Runs, v.PoisonedMapped);
            y += BarH + Gap;
        }
        return y;
    }

    private static void Bar(StringBuilder sb, int y, ulong lo, ulong hi, IReadOnlyList<LeafRun> runs, IReadOnlyList<ulong> poisoned)
    {
        double scale = BarW / (double)(hi - lo);
        sb.Append(Inv, $"<rect x=\"{Left}\" y=\"{y}\" width=\"{BarW}\" height=\"{BarH}\" fill=\"#eeeeee\" stroke=\"#777\" stroke-width=\"0.5\"/>");
        foreach (var r in runs)
        {
            if (r.End <= lo || r.Start >= hi) continue;
            double x0 = Left + (Math.Max(r.Start, lo) - lo) * scale, x1 = Left + (Math.Min(r.End, hi) - lo) * scale;
            double w = Math.Max(x1 - x0, r.Kind is LeafKind.Hwpoison or LeafKind.PoisonMarker ? 2.5 : 0.5);
            sb.Append(Inv, $"<rect x=\"{x0:0.##}\" y=\"{y}\" width=\"{w:0.##}\" height=\"{BarH}\" fill=\"{Color(r)}\"><title>{Esc(Describe(r))}</title></rect>");
        }
        foreach (var a in poisoned)
        {
            if (a < lo || a >= hi) continue;
            double x = Left + (a - lo) * scale;
            sb.Append(Inv, $"<rect x=\"{x:0.##}\" y=\"{y}\" width=\"{Math.Max(Units.PAGE_SIZE * scale, 2.5):0.##}\" height=\"{BarH}\" fill=\"#8e24aa\"><title>4 KiB poisoned but still mapped</title></rect>");
        }
    }

    /// <summary>"1 × 1 GiB hwpoison" or "511 × 2 MiB, 511 × 4 KiB, 1 × 4 KiB hwpoison".</summary>
    public static string Count(VmaSnapshot v)
    {
        var groups = v.Runs.GroupBy(r => (r.Level, r.Kind)).OrderByDescending(g => g.Key.Level).ThenBy(g => g.Key.Kind)
            .Select(g => $"{Fmt.Count((long)g.Sum(r => (double)r.Entries))} × {Fmt.Bytes(g.First().EntrySize)}{Kind(g.Key.Kind)}");
        string s = string.Join(", ", groups);
        return v.PoisonedMapped.Count > 0 ? s + $"; {v.PoisonedMapped.Count} × 4 KiB poisoned but mapped" : s;
    }

    private static string Kind(LeafKind k) => k switch
    {
        LeafKind.Hwpoison => " hwpoison",
        LeafKind.PoisonMarker => " marker",
        LeafKind.PresentPoisoned => " (poisoned folio)",
        LeafKind.Other => " other",
        _ => "",
    };

    private static string Describe(LeafRun r) => $"{Fmt.Count((long)r.Entries)} × {Fmt.Bytes(r.EntrySize)}{Kind(r.Kind)} at {Hex(r.Start)}";
    private static string Hex(ulong x) => "0x" + x.ToString("x", Inv);
    private static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
    internal static string Esc(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}

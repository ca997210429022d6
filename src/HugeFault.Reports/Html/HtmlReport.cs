using System.Text;

namespace HugeFault.Reports.Html;

/// <summary>
/// One self-contained HTML page: inline CSS, inline SVG, no script, no external reference of any kind, so it opens
/// offline and can be attached to a mailing-list reply.
/// </summary>
public static class HtmlReport
{
    private const string Css = """
        body{font-family:"DejaVu Sans",Verdana,sans-serif;margin:24px auto;max-width:1700px;color:#1a1a1a;line-height:1.45;padding:0 16px}
        h1{font-size:1.6em;border-bottom:2px solid #333;padding-bottom:4px}h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #999}
        table{border-collapse:collapse;margin:10px 0 4px;font-size:13px}th,td{border:1px solid #bbb;padding:3px 7px;vertical-align:top}
        th{background:#eef1f5;text-align:center}td.r{text-align:right;white-space:nowrap}td.l{text-align:left;min-width:14em}td.k{white-space:nowrap;font-weight:bold}
        td .d{color:#555;font-size:12px}caption{text-align:left;font-weight:bold;padding:6px 0;caption-side:top}
        p.note{font-size:12px;color:#444;margin:2px 0 14px}figure{margin:14px 0}figcaption{font-size:12px;color:#444;max-width:900px}
        ul.verdict li{margin:4px 0}details{margin:1.5em 0}summary{font-size:1.15em;font-weight:bold;cursor:pointer}svg{display:block;max-width:100%;height:auto}div.scroll{overflow-x:auto}
        """;

    /// <summary>The whole compare report with its figures.</summary>
    public static string Compare(CompareResult r) => Render(CompareReport.Build(r, figures: true), "HugeFault compare");

    /// <summary>The fleet report with its figures.</summary>
    public static string Fleet(HugeFault.Fleet.FleetReport r, FleetBands? bands) =>
        Render(FleetSection.Build(r, "HugeFault fleet", Plots.Fleet(r, bands)), "HugeFault fleet");

    public static string Render(ReportDoc doc, string title)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(E(title)).Append("</title>\n<style>").Append(Css).Append("</style></head>\n<body>\n");
        foreach (var b in doc.Blocks)
        {
            switch (b)
            {
                case HeadingBlock h:
                    int lv = Math.Clamp(h.Level, 1, 4);
                    sb.Append($"<h{lv}{(h.Id is null ? "" : $" id=\"{E(h.Id)}\"")}>").Append(E(h.Text)).Append($"</h{lv}>\n");
                    break;
                case DetailsStartBlock ds:
                    sb.Append($"<details{(ds.Id is null ? "" : $" id=\"{E(ds.Id)}\"")}><summary>").Append(E(ds.Summary)).Append("</summary>\n");
                    break;
                case DetailsEndBlock: sb.Append("</details>\n"); break;
                case ParaBlock p: sb.Append("<p>").Append(E(p.Text)).Append("</p>\n"); break;
                case BulletsBlock l:
                    sb.Append("<ul class=\"verdict\">");
                    foreach (var i in l.Items) sb.Append("<li>").Append(E(i)).Append("</li>");
                    sb.Append("</ul>\n");
                    break;
                case TableBlock t: Table(sb, t.Table); break;
                case FigureBlock f:
                    sb.Append("<figure>").Append(StripXmlDeclaration(f.Svg)).Append("<figcaption>").Append(E(f.Caption)).Append("</figcaption></figure>\n");
                    break;
            }
        }
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    /// <summary>Estimated page width for tables (px): a table wider than this is split like the terminal splits it.</summary>
    private const int PageWidth = 1360;

    private static void Table(StringBuilder sb, TextTable t)
    {
        var parts = Parts(t);
        for (int part = 0; part < parts.Count; part++)
        {
            var cols = parts[part];
            sb.Append("<div class=\"scroll\"><table>");
            if (t.Title is not null)
                sb.Append("<caption>").Append(E(t.Title + (parts.Count > 1 ? $" ({part + 1} of {parts.Count})" : ""))).Append("</caption>");
            sb.Append("<thead><tr>");
            foreach (int c in cols) sb.Append("<th>").Append(E(t.Columns[c].Header)).Append("</th>");
            sb.Append("</tr></thead><tbody>");
            foreach (var row in t.Rows)
            {
                sb.Append("<tr>");
                foreach (int i in cols)
                {
                    var cell = row[i];
                    sb.Append(i < t.KeyColumns ? "<td class=\"k\">" : t.Columns[i].Right && !cell.Wrap ? "<td class=\"r\">" : "<td class=\"l\">");
                    for (int k = 0; k < cell.Lines.Count; k++)
                        sb.Append(k == 0 ? "" : "<br><span class=\"d\">").Append(E(cell.Lines[k])).Append(k == 0 ? "" : "</span>");
                    sb.Append("</td>");
                }
                sb.Append("</tr>");
            }
            sb.Append("</tbody></table></div>\n");
        }
        foreach (var n in t.Notes) sb.Append("<p class=\"note\">").Append(E(n)).Append("</p>\n");
    }

    /// <summary>
    /// The columns of each part of a table split to fit <see cref="PageWidth"/>: the key columns in every part, the
    /// others in order. Widths are estimated from the longest unbreakable text of each column (numbers do not wrap;
    /// headers and wrapping cells break at spaces).
    /// </summary>
    private static List<List<int>> Parts(TextTable t)
    {
        int Width(int c)
        {
            int chars = t.Columns[c].Header.Split(' ').Max(w => w.Length);
            foreach (var row in t.Rows)
                foreach (var line in row[c].Lines)
                    chars = Math.Max(chars, row[c].Wrap || !t.Columns[c].Right ? Math.Min(line.Length, 28) : line.Length);
            return chars * 7 + 16;
        }
        int keys = Math.Min(t.KeyColumns, t.Columns.Count);
        int keyWidth = Enumerable.Range(0, keys).Sum(Width);
        var parts = new List<List<int>>();
        var cur = Enumerable.Range(0, keys).ToList();
        int used = keyWidth;
        for (int c = keys; c < t.Columns.Count; c++)
        {
            int w = Width(c);
            if (cur.Count > keys && used + w > PageWidth) { parts.Add(cur); cur = Enumerable.Range(0, keys).ToList(); used = keyWidth; }
            cur.Add(c); used += w;
        }
        parts.Add(cur);
        return parts;
    }

    /// <summary>SVG text from ScottPlot may start with an XML declaration, which is not allowed inside HTML.</summary>
    private static string StripXmlDeclaration(string svg)
    {
        int i = svg.IndexOf("<svg", StringComparison.Ordinal);
        return i > 0 ? svg[i..] : svg;
    }

    private static string E(string s) => PageTablePicture.Esc(s);
}

using HugeFault.Reports;
using Spectre.Console;

namespace HugeFault.Cli.Render;

/// <summary>
/// Fits a <see cref="TextTable"/> into the output width without breaking any cell inside a token: at natural width
/// if it fits; else wrappable cells and headers wrap between words; else the table is split into column groups
/// that repeat the key columns; else (a single column does not fit) each row is stacked as "header: value" lines.
/// Spectre.Console draws the result with fixed, non-wrapping columns, so it never wraps anything itself.
/// </summary>
internal static class TableLayout
{
    /// <summary>Border and padding characters of a table with n columns ("│ a │ b │").</summary>
    public static int Overhead(int n) => 3 * n + 1;

    private sealed record Col(int Index, int Min, int Natural, int Extra);

    public static void Write(IAnsiConsole console, TextTable t, TerminalOptions o)
    {
        if (t.Title is not null)
            foreach (var line in Terminal.Wrap(t.Title, o)) console.MarkupLine(o.Ascii ? Markup.Escape(line) : $"[bold]{Markup.Escape(line)}[/]");
        var cols = Enumerable.Range(0, t.Columns.Count).Select(i => Measure(t, i, o)).ToList();
        int width = o.Wide ? int.MaxValue / 4 : o.Width;
        foreach (var group in Groups(t, cols, width))
        {
            if (group is null) { Stacked(console, t, o); break; }
            var widths = Distribute(group, width);
            console.Write(Build(t, group, widths, o));
        }
        foreach (var n in t.Notes)
            foreach (var line in Terminal.Wrap(n, o)) console.WriteLine(line);
    }

    private static Col Measure(TextTable t, int i, TerminalOptions o)
    {
        var header = t.Columns[i].Header.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        int min = header.Count == 0 ? 1 : header.Max(w => w.Length);
        int nat = t.Columns[i].Header.Length;
        int extra = header.Count == 0 ? 0 : header.Max(w => o.Measure(w) - w.Length);
        foreach (var row in t.Rows)
        {
            var c = row[i];
            foreach (var line in c.Lines)
            {
                nat = Math.Max(nat, line.Length);
                int m = c.Wrap ? Terminal.Words(line).DefaultIfEmpty("").Max(w => w.Length) : line.Length;
                min = Math.Max(min, m);
                extra = Math.Max(extra, o.Measure(line) - line.Length);
            }
        }
        return new Col(i, Math.Max(1, min), Math.Max(1, nat), extra);
    }

    /// <summary>Column groups that fit (key columns repeated in each); a null group means: stack the rows.</summary>
    private static IEnumerable<List<Col>?> Groups(TextTable t, List<Col> cols, int width)
    {
        int Cost(IEnumerable<Col> g, Func<Col, int> w) => g.Sum(c => w(c) + c.Extra) + Overhead(g.Count());
        if (Cost(cols, c => c.Min) <= width) { yield return cols; yield break; }
        var keys = cols.Take(t.KeyColumns).ToList();
        var rest = cols.Skip(t.KeyColumns).ToList();
        var groups = new List<List<Col>>();
        var cur = new List<Col>(keys);
        foreach (var c in rest)
        {
            if (Cost(cur.Append(c), x => x.Min) <= width) { cur.Add(c); continue; }
            if (cur.Count == keys.Count) { yield return null; yield break; }
            groups.Add(cur);
            cur = new List<Col>(keys) { c };
            if (Cost(cur, x => x.Min) > width) { yield return null; yield break; }
        }
        groups.Add(cur);
        foreach (var g in groups) yield return g;
    }

    /// <summary>
    /// Minimum widths, then the spare width to the columns that want more: smallest need first, none taking more
    /// than an equal share of what is left, so two long wrapping columns end up about as wide as each other.
    /// </summary>
    private static int[] Distribute(List<Col> group, int width)
    {
        var w = group.Select(c => c.Min).ToArray();
        int spare = Math.Max(0, width - group.Sum(c => c.Min + c.Extra) - Overhead(group.Count));
        var order = Enumerable.Range(0, group.Count).OrderBy(i => group[i].Natural - group[i].Min).ToList();
        for (int j = 0; j < order.Count; j++)
        {
            int i = order[j];
            int want = Math.Max(0, group[i].Natural - w[i]);
            int give = Math.Min(want, spare / (order.Count - j));
            w[i] += give;
            spare -= give;
        }
        return w;
    }

    private static Table Build(TextTable t, List<Col> group, int[] widths, TerminalOptions o)
    {
        var table = new Table().Border(o.Ascii ? TableBorder.Ascii : TableBorder.Rounded);
        for (int k = 0; k < group.Count; k++)
        {
            var spec = t.Columns[group[k].Index];
            var header = string.Join("\n", WrapWords(spec.Header, widths[k]));
            var col = new TableColumn(new Markup(o.Ascii ? Markup.Escape(header) : $"[bold]{Markup.Escape(header)}[/]")).NoWrap().Width(widths[k]);
            if (spec.Right) col.RightAligned(); else col.LeftAligned();
            table.AddColumn(col);
        }
        foreach (var row in t.Rows)
        {
            var cells = new List<Spectre.Console.Rendering.IRenderable>();
            for (int k = 0; k < group.Count; k++)
            {
                var c = row[group[k].Index];
                var lines = c.Wrap ? c.Lines.SelectMany(l => Terminal.Wrap(l, widths[k], s => s.Length)) : c.Lines;
                cells.Add(new Text(string.Join("\n", lines)));
            }
            table.AddRow(cells);
        }
        return table;
    }

    /// <summary>Headers wrap at every space.</summary>
    private static List<string> WrapWords(string text, int width)
    {
        var lines = new List<string>();
        var cur = "";
        foreach (var w in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (cur.Length > 0 && cur.Length + 1 + w.Length > width) { lines.Add(cur); cur = ""; }
            cur = cur.Length == 0 ? w : cur + " " + w;
        }
        lines.Add(cur);
        return lines;
    }

    /// <summary>Narrower than one column: "key" then indented "header: value" lines, wrapped between words.</summary>
    private static void Stacked(IAnsiConsole console, TextTable t, TerminalOptions o)
    {
        foreach (var row in t.Rows)
        {
            string key = string.Join(" ", row.Take(t.KeyColumns).Select(c => c.ToString()));
            foreach (var l in Terminal.Wrap(key, o)) console.WriteLine(l);
            for (int i = t.KeyColumns; i < t.Columns.Count; i++)
                foreach (var l in Terminal.Wrap($"{t.Columns[i].Header}: {row[i]}", o with { Width = o.Width - 2 }))
                    console.WriteLine("  " + l);
        }
    }
}

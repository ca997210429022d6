using System.Text;

namespace HugeFault.Cli.Render;

/// <summary>
/// A fast renderer for the one table shape `run` prints to a pipe or file (no colours): Spectre.Console's
/// <c>TableBorder.Simple</c>, expanded to the full width, one line of plain text per cell, padding 1 each side. It lays
/// the table out by the same rules as Spectre.Console (the column measure is the longest word and the longest line;
/// widths over the limit are collapsed from the widest wrappable column down, and an expanded table shares the spare
/// width in proportion to the columns' widths; a cell wider than its column wraps between words, keeping the space
/// that ends a line) and writes each line in one piece, where Spectre measures every character's cell width in
/// its Unicode tables and writes per segment (most of `run`'s time). <see cref="TryWrite"/> declines what it does not
/// model (a character that is not one cell wide, a line break in a cell, a word wider than its column, a wrapped cell
/// that starts with a space), and the caller then draws the table with Spectre.Console; tests/HugeFault.Tests/Cli/
/// PlainTableTests.cs compares both renderers on every built-in scenario.
/// </summary>
internal sealed class PlainTable(string[] headers, bool[] rightAligned)
{
    private readonly List<string[]> _rows = new();

    public void AddRow(params string[] cells) => _rows.Add(cells);

    /// <summary>Writes the table <paramref name="width"/> cells wide, or returns false (and writes nothing) where the layout is not modelled.</summary>
    public bool TryWrite(TextWriter w, int width)
    {
        int n = headers.Length;
        int avail = width - (n - 1) - 2 - 2 * n; // separators, the two edges, padding
        if (avail <= 0) return false;
        var min = new int[n];
        var max = new int[n];
        foreach (var row in _rows.Prepend(headers))
            for (int i = 0; i < n; i++)
            {
                if (!Measure(row[i], out int lo, out int hi)) return false;
                min[i] = Math.Max(min[i], lo);
                max[i] = Math.Max(max[i], Math.Min(hi, avail));
            }
        var widths = Widths(max, avail);
        if (widths.Sum() != avail) return false; // not the exact fit Expand gives
        for (int i = 0; i < n; i++)
            if (min[i] > widths[i]) return false; // a word that does not fit: Spectre folds it
        var sb = new StringBuilder(width * (_rows.Count + 4) * 2);
        sb.Append(' ', width).Append('\n');
        Row(sb, headers, widths);
        sb.Append('─', width).Append('\n');
        foreach (var row in _rows)
            if (!Row(sb, row, widths)) return false;
        sb.Append(' ', width).Append('\n');
        w.Write(sb.ToString());
        return true;
    }

    /// <summary>Every character one cell wide and no line break; min = the longest run of spaces or non-spaces, max = the length.</summary>
    private static bool Measure(string s, out int min, out int max)
    {
        min = 0; max = s.Length;
        int run = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (!OneCell(c)) return false;
            run = i > 0 && (s[i - 1] == ' ') == (c == ' ') ? run + 1 : 1;
            min = Math.Max(min, run);
        }
        return true;
    }

    /// <summary>Printable ASCII and the few one-cell symbols the traces use (none wide, combining or a control).</summary>
    private static bool OneCell(char c) => c is >= ' ' and <= '~' or 'µ' or '→' or '←' or '×' or '…' or '—' or '–' or '≤' or '≥' or '·';

    private static int[] Widths(int[] max, int avail)
    {
        var widths = (int[])max.Clone();
        int total = widths.Sum();
        if (total > avail)
        {
            Collapse(widths, avail);
            total = widths.Sum();
            if (total > avail) Reduce(widths, total - avail, [.. widths.Select(_ => 1)], (int[])widths.Clone());
            total = widths.Sum();
        }
        if (total < avail)
        {
            // the spare width shared in proportion to the widths, each share rounded up, in column order
            int ratio = widths.Sum(), remaining = avail - total;
            var add = new int[widths.Length];
            for (int i = 0; i < widths.Length; i++)
            {
                add[i] = ratio > 0 ? (int)Math.Ceiling(widths[i] * remaining / (double)ratio) : remaining;
                ratio -= widths[i];
                remaining -= add[i];
            }
            for (int i = 0; i < widths.Length; i++) widths[i] += add[i];
        }
        return widths;
    }

    /// <summary>Narrows the widest columns towards the next widest until the total fits (or no column is wider than another).</summary>
    private static void Collapse(int[] widths, int avail)
    {
        int excess = widths.Sum() - avail;
        while (excess > 0)
        {
            int widest = widths.Max();
            int second = widths.Select(x => x != widest ? x : 1).Max();
            int diff = widest - second;
            if (diff == 0) break;
            Reduce(widths, excess, [.. widths.Select(x => x == widest ? 1 : 0)], [.. widths.Select(_ => Math.Min(excess, diff))]);
            excess = widths.Sum() - avail;
        }
    }

    /// <summary>Takes <paramref name="total"/> from the columns in proportion to <paramref name="ratios"/> (integer shares), at most <paramref name="maximums"/> each.</summary>
    private static void Reduce(int[] widths, int total, int[] ratios, int[] maximums)
    {
        for (int i = 0; i < ratios.Length; i++) if (maximums[i] <= 0) ratios[i] = 0;
        int totalRatio = ratios.Sum();
        if (totalRatio <= 0) return;
        for (int i = 0; i < widths.Length; i++)
        {
            if (ratios[i] == 0 || totalRatio <= 0) continue;
            int take = Math.Min(maximums[i], ratios[i] * total / totalRatio);
            widths[i] -= take;
            total -= take;
            totalRatio -= ratios[i];
        }
    }

    private bool Row(StringBuilder sb, string[] cells, int[] widths)
    {
        int n = cells.Length;
        var lines = new List<string>[n];
        int height = 1;
        for (int i = 0; i < n; i++)
        {
            lines[i] = Wrap(cells[i], widths[i]);
            if (lines[i].Count > 1 && cells[i].StartsWith(' ')) return false; // Spectre indents such a cell's later lines
            height = Math.Max(height, lines[i].Count);
        }
        for (int l = 0; l < height; l++)
        {
            sb.Append(' ');
            for (int i = 0; i < n; i++)
            {
                string text = l < lines[i].Count ? lines[i][l] : "";
                sb.Append(' ');
                if (rightAligned[i] && text.Length > 0) sb.Append(' ', widths[i] - text.Length).Append(text);
                else sb.Append(text).Append(' ', widths[i] - text.Length);
                sb.Append(' ').Append(' '); // padding, then the separator (the right edge after the last cell)
            }
            sb.Append('\n');
        }
        return true;
    }

    /// <summary>
    /// Greedy wrapping between runs of spaces and non-spaces: a run that does not fit ends the line (a line keeps its
    /// trailing space) and, if it is spaces, is dropped.
    /// </summary>
    private static List<string> Wrap(string s, int width)
    {
        if (s.Length <= width) return [s];
        var lines = new List<string>();
        var line = new StringBuilder();
        int i = 0;
        while (i < s.Length)
        {
            int j = i;
            bool space = s[i] == ' ';
            while (j < s.Length && (s[j] == ' ') == space) j++;
            int len = j - i;
            bool broke = false;
            if (line.Length + len > width)
            {
                lines.Add(line.ToString());
                line.Clear();
                broke = true;
            }
            if (!(broke && space)) line.Append(s, i, len);
            i = j;
        }
        if (line.Length > 0) lines.Add(line.ToString());
        return lines;
    }
}

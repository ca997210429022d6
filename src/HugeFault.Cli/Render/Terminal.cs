using System.Text;
using HugeFault.Reports;
using Spectre.Console;

namespace HugeFault.Cli.Render;

/// <summary>How wide the output may be and how it is measured.</summary>
/// <param name="Width">Columns available (COLUMNS, else the terminal's width, else 120 when not a terminal).</param>
/// <param name="Ascii">Not a terminal: ASCII borders, widths counted in UTF-8 bytes (so byte-counting tools such as mawk agree), no colour.</param>
/// <param name="Wide">--wide: every table at its natural width, nothing split or stacked.</param>
internal sealed record TerminalOptions(int Width, bool Ascii, bool Wide)
{
    public const int PipeWidth = 120;

    public static TerminalOptions Detect(TextWriter w, bool wide = false, Func<string, string?>? env = null)
    {
        env ??= CliEnvironment.Get;
        bool tty = ReferenceEquals(w, Console.Out) && !Console.IsOutputRedirected;
        int width = PipeWidth;
        if (int.TryParse(env("COLUMNS"), out int cols) && cols > 0) width = cols;
        else if (tty)
        {
            try { width = Console.WindowWidth > 0 ? Console.WindowWidth : 80; } catch (IOException) { width = 80; }
        }
        return new TerminalOptions(Math.Max(20, width), !tty, wide);
    }

    /// <summary>Length of a line as the output is measured (ASCII output is transliterated first, so chars = bytes).</summary>
    public int Measure(string s) => s.Length;

    private static readonly (string From, string To)[] Glyphs =
        [("Δ", "diff"), ("−", "-"), ("±", "+/-"), ("×", "x"), ("–", "-"), ("≈", "~"), ("✗", "x"), ("µ", "u"), ("…", "..."), ("≤", "<="), ("≥", ">="), ("σ", "sigma"), ("∞", "inf"), ("→", "->"), ("é", "e")];

    /// <summary>Plain ASCII for files and pipes (mailing-list friendly; byte-counting tools agree with the layout).</summary>
    public string Text(string s)
    {
        if (!Ascii) return s;
        foreach (var (f, t) in Glyphs) s = s.Replace(f, t);
        var sb = new StringBuilder(s.Length);
        foreach (char c in s) sb.Append(c < 128 ? c : '?');
        return sb.ToString();
    }
}

/// <summary>Writes a <see cref="ReportDoc"/> to a terminal or a file: tables fitted to the width, paragraphs wrapped between words, no trailing blanks.</summary>
internal static class Terminal
{
    public static void Write(ReportDoc doc, TextWriter w, TerminalOptions o)
    {
        var sb = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = o.Ascii ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = o.Ascii ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Out = new AnsiConsoleOutput(sb),
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = o.Wide ? 100_000 : o.Width;
        bool first = true;
        foreach (var b in Transliterate(doc, o).Blocks)
        {
            switch (b)
            {
                case DetailsStartBlock ds:
                    if (!first) console.WriteLine();
                    foreach (var line in Wrap(ds.Summary, o)) console.MarkupLine(o.Ascii ? Markup.Escape(line) : $"[bold]{Markup.Escape(line)}[/]");
                    break;
                case HeadingBlock h:
                    if (!first) console.WriteLine();
                    foreach (var line in Wrap(h.Text, o)) console.MarkupLine(o.Ascii ? Markup.Escape(line) : $"[bold]{Markup.Escape(line)}[/]");
                    if (h.Level == 1) console.WriteLine(new string(o.Ascii ? '=' : '═', Math.Min(o.Width, MaxLine(Wrap(h.Text, o), o))));
                    break;
                case ParaBlock p:
                    foreach (var line in Wrap(p.Text, o)) console.WriteLine(line);
                    break;
                case BulletsBlock bl:
                    foreach (var item in bl.Items)
                    {
                        var lines = Wrap(item, o with { Width = o.Width - 2 });
                        for (int i = 0; i < lines.Count; i++) console.WriteLine((i == 0 ? "- " : "  ") + lines[i]);
                    }
                    break;
                case TableBlock t:
                    TableLayout.Write(console, t.Table, o);
                    break;
            }
            first = false;
        }
        foreach (var line in sb.ToString().Split('\n'))
        {
            // Spectre pads some lines; nothing the reader needs is at the end of a line
            string l = line.TrimEnd('\r').TrimEnd();
            w.WriteLine(l);
        }
    }

    private static ReportDoc Transliterate(ReportDoc doc, TerminalOptions o)
    {
        if (!o.Ascii) return doc;
        var d = new ReportDoc();
        foreach (var b in doc.Blocks)
            d.Blocks.Add(b switch
            {
                HeadingBlock h => h with { Text = o.Text(h.Text) },
                DetailsStartBlock ds => ds with { Summary = o.Text(ds.Summary) },
                ParaBlock p => new ParaBlock(o.Text(p.Text)),
                BulletsBlock l => new BulletsBlock(l.Items.Select(o.Text).ToList()),
                TableBlock t => new TableBlock(Ascii(t.Table, o)),
                _ => b,
            });
        return d;
    }

    private static TextTable Ascii(TextTable t, TerminalOptions o)
    {
        var n = new TextTable(t.Title is null ? null : o.Text(t.Title), t.Columns.Select(c => c with { Header = o.Text(c.Header) }), t.KeyColumns);
        foreach (var r in t.Rows) n.Rows.Add(r.Select(c => c with { Lines = c.Lines.Select(o.Text).ToList() }).ToArray());
        n.Notes.AddRange(t.Notes.Select(o.Text));
        return n;
    }

    private static int MaxLine(IReadOnlyList<string> lines, TerminalOptions o) => lines.Count == 0 ? 0 : lines.Max(o.Measure);

    /// <summary>Words of a text; a bracketed group ("[1.66, 1.74]", "(Δ −2.16 …)") stays one word.</summary>
    public static List<string> Words(string text)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        int depth = 0;
        foreach (char c in text)
        {
            if (c == '[') depth++;
            if (c == ']') depth = Math.Max(0, depth - 1);
            if (c == ' ' && depth == 0)
            {
                if (cur.Length > 0) { words.Add(cur.ToString()); cur.Clear(); }
                continue;
            }
            cur.Append(c);
        }
        if (cur.Length > 0) words.Add(cur.ToString());
        // "Δ −2.16 [−2.33, −2.00]" stays one unit
        for (int i = words.Count - 2; i >= 0; i--)
            if (words[i] is "Δ" or "(Δ" or "diff" or "(diff") { words[i] += " " + words[i + 1]; words.RemoveAt(i + 1); }
        return words;
    }

    /// <summary>Greedy word wrap to the width; a word longer than the width is split at its own spaces, never inside.</summary>
    public static List<string> Wrap(string text, TerminalOptions o) => Wrap(text, o.Wide ? int.MaxValue : o.Width, o.Measure);

    public static List<string> Wrap(string text, int width, Func<string, int> measure)
    {
        var lines = new List<string>();
        foreach (var para in text.Split('\n'))
        {
            var cur = new StringBuilder();
            foreach (var word in Words(para).SelectMany(w => measure(w) > width ? w.Split(' ') : [w]))
            {
                if (cur.Length > 0 && measure(cur + " " + word) > width) { lines.Add(cur.ToString()); cur.Clear(); }
                if (cur.Length > 0) cur.Append(' ');
                cur.Append(word);
            }
            lines.Add(cur.ToString());
        }
        return lines;
    }
}

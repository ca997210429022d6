namespace HugeFault.Reports;

/// <summary>
/// A report as data: headings, paragraphs, tables and figures. The terminal renderer (CLI, Spectre.Console) and the
/// HTML renderer (<see cref="Html.HtmlReport"/>) draw the same document, so both say the same thing.
/// </summary>
public sealed class ReportDoc
{
    public List<Block> Blocks { get; } = new();

    public ReportDoc Heading(string text, int level = 1, string? id = null) { Blocks.Add(new HeadingBlock(text, level, id)); return this; }
    public ReportDoc Para(string text) { Blocks.Add(new ParaBlock(text)); return this; }
    public ReportDoc Bullets(IEnumerable<string> items) { Blocks.Add(new BulletsBlock(items.ToList())); return this; }
    public ReportDoc Table(TextTable t) { Blocks.Add(new TableBlock(t)); return this; }
    public ReportDoc Figure(string svg, string caption) { Blocks.Add(new FigureBlock(svg, caption)); return this; }
    public ReportDoc Add(ReportDoc other) { Blocks.AddRange(other.Blocks); return this; }
    /// <summary>Starts a section a reader may skip: a heading in the terminal, a collapsed &lt;details&gt; in HTML (until <see cref="DetailsEnd"/>).</summary>
    public ReportDoc DetailsStart(string summary, string? id = null) { Blocks.Add(new DetailsStartBlock(summary, id)); return this; }
    public ReportDoc DetailsEnd() { Blocks.Add(new DetailsEndBlock()); return this; }
}

public abstract record Block;
public sealed record HeadingBlock(string Text, int Level, string? Id) : Block;
public sealed record ParaBlock(string Text) : Block;
public sealed record BulletsBlock(IReadOnlyList<string> Items) : Block;
public sealed record TableBlock(TextTable Table) : Block;
/// <summary>The start of a collapsible section: its summary line (a level-2 heading in the terminal).</summary>
public sealed record DetailsStartBlock(string Summary, string? Id) : Block;
public sealed record DetailsEndBlock : Block;
/// <summary>An inline SVG figure (HTML only; the terminal prints nothing for it).</summary>
public sealed record FigureBlock(string Svg, string Caption) : Block;

/// <summary>One table cell: atomic lines that are never broken, or free text that may wrap at spaces.</summary>
public sealed record TextCell(IReadOnlyList<string> Lines, bool Wrap = false, string? Css = null)
{
    public static implicit operator TextCell(string s) => new([s]);
    public static TextCell Of(params string[] lines) => new(lines);
    public static TextCell Text(string s) => new([s], Wrap: true);
    public override string ToString() => string.Join(" ", Lines);
}

/// <summary>A column: its header (may wrap at spaces) and alignment.</summary>
public sealed record TextColumn(string Header, bool Right = true);

/// <summary>
/// A table of atomic cells. The first <see cref="KeyColumns"/> columns identify a row (repeated when a narrow
/// terminal splits the table into several); <see cref="Notes"/> are printed under it.
/// </summary>
public sealed class TextTable
{
    public TextTable(string? title, IEnumerable<TextColumn> columns, int keyColumns = 1)
    {
        Title = title;
        Columns = columns.ToList();
        KeyColumns = keyColumns;
    }

    public string? Title { get; }
    public List<TextColumn> Columns { get; }
    public int KeyColumns { get; }
    public List<TextCell[]> Rows { get; } = new();
    public List<string> Notes { get; } = new();

    public TextTable Row(params TextCell[] cells)
    {
        if (cells.Length != Columns.Count) throw new ArgumentException($"row has {cells.Length} cells for {Columns.Count} columns");
        Rows.Add(cells);
        return this;
    }
}

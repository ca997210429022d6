using Spectre.Console;

namespace HugeFault.Cli.Render;

/// <summary>Console helpers: a Spectre console over a writer (testable), plain when not a terminal.</summary>
internal static class Out
{
    public static IAnsiConsole Create(TextWriter w, bool? ansi = null) => Create(w, IsTerminal(w, ansi), TerminalOptions.Detect(w).Width);

    /// <summary>True when <paramref name="w"/> is the process's stdout on a terminal (or <paramref name="ansi"/> says so).</summary>
    public static bool IsTerminal(TextWriter w, bool? ansi = null) => ansi ?? (!Console.IsOutputRedirected && w == Console.Out);

    private static IAnsiConsole Create(TextWriter w, bool tty, int width)
    {
        var c = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = tty ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = tty ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(w),
            Interactive = tty ? InteractionSupport.Detect : InteractionSupport.No,
        });
        // not a terminal: COLUMNS or 120, never padded (Terminal.Write trims what Spectre pads)
        c.Profile.Width = width;
        return c;
    }

    /// <summary>
    /// A console rendering into memory exactly as <see cref="Create(TextWriter, bool?)"/> over <paramref name="like"/>
    /// renders (same width, no colours, the same text encoding, which decides Spectre's Unicode borders): lets a worker
    /// thread render what is later written to <paramref name="like"/> in one piece. Only for output that is not a terminal
    /// (a terminal's capabilities are detected from the terminal itself).
    /// </summary>
    public static (IAnsiConsole Console, StringWriter Text) Buffer(TextWriter like)
    {
        if (IsTerminal(like)) throw new InvalidOperationException("Out.Buffer renders like a pipe or file, not a terminal");
        var text = new EncodedStringWriter(like.Encoding);
        return (Create(text, tty: false, TerminalOptions.Detect(like).Width), text);
    }

    private sealed class EncodedStringWriter(System.Text.Encoding encoding) : StringWriter(System.Globalization.CultureInfo.InvariantCulture)
    {
        public override System.Text.Encoding Encoding => encoding;
    }

    /// <summary>One-line user error on stderr (never a stack trace), returning the exit code.</summary>
    public static int UserError(string message, TextWriter err, int code = 2)
    {
        err.WriteLine("hugefault: " + message);
        return code;
    }
}

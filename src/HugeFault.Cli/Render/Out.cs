using Spectre.Console;

namespace HugeFault.Cli.Render;

/// <summary>Console helpers: a Spectre console over a writer (testable), plain when not a terminal.</summary>
internal static class Out
{
    public static IAnsiConsole Create(TextWriter w, bool? ansi = null)
    {
        bool tty = ansi ?? (!Console.IsOutputRedirected && w == Console.Out);
        var c = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = tty ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = tty ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(w),
            Interactive = tty ? InteractionSupport.Detect : InteractionSupport.No,
        });
        // not a terminal: COLUMNS or 120, never padded (Terminal.Write trims what Spectre pads)
        c.Profile.Width = TerminalOptions.Detect(w).Width;
        return c;
    }

    /// <summary>One-line user error on stderr (never a stack trace), returning the exit code.</summary>
    public static int UserError(string message, TextWriter err, int code = 2)
    {
        err.WriteLine("hugefault: " + message);
        return code;
    }
}

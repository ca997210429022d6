using System.Text;
using System.Text.Json;
using HugeFault.Mm;
using HugeFault.Scenarios;
using Spectre.Console;

namespace HugeFault.Cli.Render;

/// <summary>Renders scenario runs as a readable trace table or as JSON lines.</summary>
internal static class ScenarioRender
{
    public static void Table(IAnsiConsole c, ScenarioRun run, bool showTrace = true)
    {
        var sc = run.Scenario;
        c.Write(new Rule($"[bold]{Markup.Escape(sc.Name)}[/]  [grey]({Markup.Escape(sc.File)}, policy {run.Policy})[/]").LeftJustified());
        if (!showTrace) { Summary(c, run); return; }
        // a pipe or file: the fast renderer draws what Spectre.Console would (or declines, and Spectre draws it)
        if (c.Profile.Capabilities is { Ansi: false, Unicode: true } && TryPlainTable(c.Profile.Out.Writer, c.Profile.Width, run)) { Summary(c, run); return; }
        c.Write(SpectreTable(run));
        Summary(c, run);
    }

    /// <summary>The trace table as Spectre.Console draws it.</summary>
    internal static Table SpectreTable(ScenarioRun run)
    {
        var t = new Table().Border(TableBorder.Simple).Expand();
        t.AddColumn(Headers[0]); t.AddColumn(new TableColumn(Headers[1]).RightAligned()); t.AddColumn(Headers[2]); t.AddColumn(Headers[3]);
        foreach (var row in Rows(run, markup: true)) t.AddRow(row);
        return t;
    }

    /// <summary>The same table, uncoloured, <paramref name="width"/> cells wide, by <see cref="PlainTable"/>; false (nothing written) where it declines.</summary>
    internal static bool TryPlainTable(TextWriter w, int width, ScenarioRun run)
    {
        var plain = new PlainTable(Headers, [false, true, false, false]);
        foreach (var row in Rows(run, markup: false)) plain.AddRow(row);
        return plain.TryWrite(w, width);
    }

    private static readonly string[] Headers = ["step", "t (µs)", "event", "detail"];

    /// <summary>The trace table's rows: as Spectre markup (colours, escaped), or as the plain text a pipe gets.</summary>
    private static IEnumerable<string[]> Rows(ScenarioRun run, bool markup)
    {
        string S(string text, string style) => markup ? $"[{style}]{Markup.Escape(text)}[/]" : text;
        string P(string text) => markup ? Markup.Escape(text) : text;
        foreach (var so in run.Steps)
        {
            string mark = so.Failures.Count > 0 ? S("FAIL", "red") : so.Step.Expect is null ? "" : S("ok", "green");
            yield return [$"{so.Step.Index} {mark}", "", S(so.Step.Op, "bold"), P(so.Summary)];
            for (int i = so.TraceStart; i < so.TraceEnd; i++)
            {
                var e = run.Kernel.Trace[i];
                if (e is SyscallEvent) continue; // already in the step summary
                string color = e switch { SignalEvent => "yellow", PanicEvent => "red", LogEvent => "grey", CounterEvent => "blue", _ => "white" };
                yield return ["", (e.TimeNs / 1000.0).ToString("0.000"), S(e.Kind, color), P(e.Describe())];
            }
            foreach (var f in so.Failures) yield return ["", "", S("expected", "red"), S(f, "red")];
        }
    }

    public static void Summary(IAnsiConsole c, ScenarioRun run)
    {
        int exp = run.Steps.Count(s => s.Step.Expect is not null);
        int bad = run.Steps.Count(s => s.Failures.Count > 0);
        var st = run.Kernel.Stats;
        c.MarkupLine(bad == 0
            ? $"[green]PASS[/] {exp} expectation steps; signals {st.Signals}, killed {st.TasksKilled}, HardwareCorrupted {HugeFault.Reports.Fmt.Count(run.Kernel.NumPoisonedPages * 4)} kB"
            : $"[red]FAIL[/] {bad} of {exp} expectation steps failed");
        foreach (var f in run.Failures) c.MarkupLine("  [red]" + Markup.Escape(f) + "[/]");
    }

    /// <summary>One JSON object per trace event, then one per failure and a summary line.</summary>
    public static void JsonLines(TextWriter w, ScenarioRun run, bool summaryOnly = false)
    {
        foreach (var so in summaryOnly ? [] : run.Steps)
        {
            for (int i = so.TraceStart; i < so.TraceEnd; i++)
                w.WriteLine(EventJson(run, so.Step.Index, run.Kernel.Trace[i]));
            foreach (var f in so.Failures)
                w.WriteLine(Obj(j => { j.WriteString("scenario", run.Scenario.Name); j.WriteNumber("step", so.Step.Index); j.WriteString("kind", "expectation_failed"); j.WriteString("line", so.Step.Pos.ToString()); j.WriteString("detail", f); }));
        }
        w.WriteLine(Obj(j =>
        {
            j.WriteString("scenario", run.Scenario.Name); j.WriteString("file", run.Scenario.File); j.WriteString("policy", run.Policy);
            j.WriteString("kind", "summary"); j.WriteBoolean("passed", run.Passed); j.WriteNumber("failures", run.Failures.Count());
        }));
    }

    private static string EventJson(ScenarioRun run, int step, TraceEvent e) => Obj(j =>
    {
        j.WriteString("scenario", run.Scenario.Name); j.WriteNumber("step", step); j.WriteNumber("t_ns", e.TimeNs); j.WriteString("kind", e.Kind);
        switch (e)
        {
            case SyscallEvent s: j.WriteString("task", s.Task); j.WriteString("call", s.Call); j.WriteString("args", s.Args); j.WriteNumber("ret", s.Ret); if (s.Errno != 0) j.WriteString("errno", Errno.Name(s.Errno)); break;
            case SignalEvent g: j.WriteString("task", g.Task); j.WriteString("signo", Sig.Name(g.Signo)); j.WriteString("si_code", g.SiCodeName); j.WriteString("si_addr", Units.Hex(g.SiAddr)); j.WriteString("si_addr_sym", g.SiAddrSym); j.WriteNumber("si_addr_lsb", g.SiAddrLsb); j.WriteBoolean("forced", g.Forced); break;
            case CounterEvent ce: j.WriteString("name", ce.Name); j.WriteNumber("old", ce.Old); j.WriteNumber("new", ce.New); break;
            case AccessEvent a: j.WriteString("task", a.Task); j.WriteString("op", a.Op); j.WriteString("addr", a.Addr); j.WriteNumber("length", a.Length); j.WriteNumber("done", a.Done); j.WriteString("outcome", a.Outcome); break;
            default: j.WriteString("text", e.Describe()); break;
        }
    });

    internal static string Obj(Action<Utf8JsonWriter> body)
    {
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        { j.WriteStartObject(); body(j); j.WriteEndObject(); }
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}

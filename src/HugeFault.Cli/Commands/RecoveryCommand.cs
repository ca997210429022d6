using System.CommandLine;
using HugeFault.Cli.Render;
using HugeFault.Oracle;
using HugeFault.Scenarios;
using Spectre.Console;

namespace HugeFault.Cli.Commands;

/// <summary>
/// `hugefault recovery [--results DIR]`: the model's userspace-migrate policy next to what HugeFault.Recovery's demo
/// measured on a real kernel (tools/realkernel/recovery.sh --record), one table per case.
/// </summary>
internal static class RecoveryCommand
{
    public static Command Create()
    {
        var results = new Option<string?>("--results") { Description = "Folder with the demo's runs (default " + RecoveryReality.RecordedDir + ")" };
        var json = new Option<bool>("--json") { Description = "JSON on stdout" };
        var cmd = new Command("recovery", "Model versus reality for the userspace recovery agent: userspace-migrate's predictions next to the real kernel's measurements.") { results, json };
        cmd.SetAction(pr => Execute(pr.GetValue(results), pr.GetValue(json), pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error));
        return cmd;
    }

    public static int Execute(string? results, bool json, TextWriter w, TextWriter err)
    {
        string dir = results ?? Path.Combine(OracleSession.RepoRoot() ?? ".", RecoveryReality.RecordedDir);
        if (!Directory.Exists(dir)) return Out.UserError($"--results: no folder {dir}; record runs with tools/realkernel/recovery.sh --record 2m 1g 2m-shared", err);
        var cases = new List<RecoveryCase>();
        foreach (var (key, scenario) in RecoveryReality.Cases)
        {
            string path = Path.Combine(dir, key + ".jsonl");
            if (!File.Exists(path)) continue;
            var rc = RecoveryReality.CompareFile(key, BuiltinScenarios.Load(scenario), path);
            if (rc is null) return Out.UserError($"{path}: neither a recovery nor a refusal record in it (a run that did not finish?); re-run tools/realkernel/recovery.sh --record {key}", err);
            cases.Add(rc);
        }
        if (cases.Count == 0) return Out.UserError($"no recorded runs ({string.Join(", ", RecoveryReality.Cases.Select(c => c.Key + ".jsonl"))}) in {dir}; record them with tools/realkernel/recovery.sh --record 2m 1g 2m-shared", err);
        if (json)
        {
            w.WriteLine(System.Text.Json.JsonSerializer.Serialize(cases.Select(c => new CaseJson(c.Key, c.Scenario, c.Kernel, c.Rows)),
                RecoveryJson.Default.IEnumerableCaseJson));
            return 0;
        }
        var c = Out.Create(w);
        foreach (var rc in cases)
        {
            var t = new Table().Title($"[bold]{rc.Key}[/]: model (userspace-migrate, {Markup.Escape(rc.Scenario)}) vs Linux {Markup.Escape(rc.Kernel)}")
                .AddColumn("quantity").AddColumn("model").AddColumn("Linux").AddColumn("agree").AddColumn("note");
            foreach (var r in rc.Rows)
                t.AddRow(Markup.Escape(r.Quantity), Markup.Escape(r.Model), Markup.Escape(r.Linux), r.Agree switch { true => "yes", false => "[red]no[/]", null => "—" }, Markup.Escape(r.Note));
            c.Write(t);
            c.MarkupLine(Markup.Escape($"{rc.Key}: {rc.Agreeing} of {rc.Agreeing + rc.Differing} compared quantities agree"
                + (rc.Differing == 0 ? "." : $"; differ: {string.Join(", ", rc.Rows.Where(r => r.Agree == false).Select(r => r.Quantity))}.")));
            c.WriteLine();
        }
        return 0;
    }
}

/// <summary>One compared case of <c>recovery --json</c> (property names and order are the output's).</summary>
internal sealed record CaseJson(string Key, string Scenario, string Kernel, IReadOnlyList<RecoveryRow> Rows);

/// <summary>System.Text.Json's source-generated serializer for <c>recovery --json</c> (no reflection: works in a Native AOT build).</summary>
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(IEnumerable<CaseJson>))]
internal sealed partial class RecoveryJson : System.Text.Json.Serialization.JsonSerializerContext;

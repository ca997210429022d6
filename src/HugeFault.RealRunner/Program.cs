using HugeFault.RealRunner.Probes;
using HugeFault.RealRunner.Probing;

// HugeFault.RealRunner: real-kernel probes for the HugeTLB memory-failure model. Runs as root inside
// the qemu guest built by tools/realkernel/ (and the "selftest" probe anywhere).
//   HugeFault.RealRunner list               probe names, cases and questions
//   HugeFault.RealRunner bootargs NAME      the huge page kernel command line for NAME's boot
//   HugeFault.RealRunner probe NAME         run NAME; JSON lines on stdout
//   HugeFault.RealRunner run-scenario PLAN  run a scenario plan (JSON from `hugefault oracle`); oracle trace lines on stdout
if (args.Length >= 1 && args[0] == "list")
{
    foreach (var s in ProbeCatalog.All) Console.WriteLine($"{s.Name,-16} cases {s.Cases,-9} {s.Question}");
    return 0;
}
if (args.Length == 2 && args[0] is "bootargs" or "probe" && ProbeCatalog.Find(args[1]) is { } spec)
{
    if (args[0] == "bootargs") { Console.WriteLine(spec.BootArgs); return 0; }
    var p = new Probe(spec.Name);
    p.KmsgStart();
    p.Emit(p.Line("start").Str("cases", spec.Cases).Str("question", spec.Question).Str("bootargs", spec.BootArgs));
    try { spec.Run(p); }
    catch (Exception e) { p.Note("exception", e.ToString()); p.KmsgDrain(); return 2; }
    p.KmsgDrain();
    p.Emit(p.Line("end"));
    return 0;
}
if (args.Length == 2 && args[0] == "run-scenario")
{
    // the plan is the JSON step list hugefault oracle derived from the scenario YAML on the host
    using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(args[1]));
    var probe = new Probe("scenario");
    return new HugeFault.RealRunner.Scenarios.ScenarioExec(doc.RootElement, probe.KernelRelease).Run();
}
Console.Error.WriteLine("usage: HugeFault.RealRunner list | bootargs NAME | probe NAME | run-scenario PLAN.json");
return 64;

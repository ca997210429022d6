using System.Text;
using System.Text.Json;

namespace HugeFault.Recovery.Demo;

/// <summary>
/// The demo's output: one JSON object per line (tools/realkernel keeps them as the run's record) and lines
/// for people, prefixed "recovery-demo: " (recovery.sh prints those).
/// </summary>
internal sealed class Output(string key, string kernel, bool quiet)
{
    private static readonly JsonWriterOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A line for people (tools/realkernel records it as a "console" line of the run).</summary>
    public void Say(string text)
    {
        if (!quiet) Console.Out.WriteLine("recovery-demo: " + text);
    }

    public void Line(string step, Action<Utf8JsonWriter> fields)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, Options))
        {
            w.WriteStartObject();
            w.WriteString("demo", key);
            w.WriteString("kernel", kernel);
            w.WriteString("step", step);
            fields(w);
            w.WriteEndObject();
        }
        Console.Out.WriteLine(Encoding.UTF8.GetString(ms.ToArray()));
        Console.Out.Flush();
    }

    public void Meminfo(string phase, Meminfo m) => Line("meminfo", w =>
    {
        w.WriteString("phase", phase);
        w.WriteNumber("MemFree_kB", m.MemFree); w.WriteNumber("Shmem_kB", m.Shmem); w.WriteNumber("ShmemHugePages_kB", m.ShmemHugePages);
        w.WriteNumber("HardwareCorrupted_kB", m.HardwareCorrupted); w.WriteNumber("PageTables_kB", m.PageTables);
        w.WriteNumber("HugePages_Total", m.HugeTotal); w.WriteNumber("HugePages_Free", m.HugeFree); w.WriteNumber("HugePages_Rsvd", m.HugeRsvd);
        w.WriteNumber("1G_total", m.Huge1GTotal); w.WriteNumber("1G_free", m.Huge1GFree);
    });

    public static string Size(long bytes) => bytes >= 1L << 30 && bytes % (1L << 30) == 0 ? $"{bytes >> 30} GiB"
        : bytes >= 1L << 20 && bytes % (1L << 20) == 0 ? $"{bytes >> 20} MiB"
        : bytes >= 1L << 10 && bytes % (1L << 10) == 0 ? $"{bytes >> 10} KiB" : $"{bytes} B";

    public static string Ms(double ns) => (ns / 1e6).ToString(ns >= 1e9 ? "0" : ns >= 1e7 ? "0.0" : "0.00", System.Globalization.CultureInfo.InvariantCulture) + " ms";
}

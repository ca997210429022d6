using System.Globalization;
using System.Text.Json;
using HugeFault.Mm;
using HugeFault.Scenarios;

namespace HugeFault.Oracle;

/// <summary>What one run of HugeFault.Recovery.Demo measured on a real kernel (a tools/realkernel/recovery-results/KEY.jsonl).</summary>
public sealed record RealRecovery(
    string Key, string Kernel, long PageSize, string Outcome, string FirstCode, int FirstLsb, long LostBytes, long VerifiedBytes, long MismatchedKeys,
    int LaterTouchLsb, long BytesCopied, long ExtraPeakBytes, long ExtraAfterBytes, long PoolPagesLost, long HardwareCorruptedKb,
    long RecoveryNs, long ScanNs, long FillNs, long SwapNs, long MemcpyIdleNs, long MemcpyBusyNs, long SharerUnreadableBytes, bool SharerKilled, int AoLsb)
{
    /// <summary>Reads a run's JSON lines; null if the file has no recovery record.</summary>
    public static RealRecovery? Read(string path)
    {
        var steps = new Dictionary<string, List<JsonElement>>();
        foreach (var line in File.ReadLines(path))
        {
            if (!line.StartsWith('{')) continue;
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (!root.TryGetProperty("demo", out _) || !root.TryGetProperty("step", out var st)) continue;
            steps.TryAdd(st.GetString()!, []);
            steps[st.GetString()!].Add(root.Clone());
        }
        if (!steps.TryGetValue("recovery", out var recs) || !steps.TryGetValue("config", out var cfg)) return null;
        JsonElement? One(string step) => steps.TryGetValue(step, out var l) ? l[0] : null;
        long N(JsonElement? e, string f) => e is { } x && x.TryGetProperty(f, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : 0;
        JsonElement? Mem(string phase) => steps.TryGetValue("meminfo", out var l) ? l.FirstOrDefault(m => m.GetProperty("phase").GetString() == phase) : null;
        var rec = recs[0];
        long page = N(cfg[0], "page_size");
        bool giga = page == 1L << 30;
        var (filled, after, before, released) = (Mem("filled"), Mem("after"), Mem("before"), Mem("released"));
        var verify = One("verify");
        var bench = One("bench");
        var sharer = One("sharer");
        long Median(string f) => bench is { } b && b.TryGetProperty(f, out var a) && a.GetArrayLength() > 0
            ? a.EnumerateArray().Select(x => x.GetInt64()).Order().ElementAt(a.GetArrayLength() / 2) : 0;
        return new RealRecovery(
            rec.GetProperty("demo").GetString()!, rec.GetProperty("kernel").GetString()!, page, rec.GetProperty("outcome").GetString()!,
            rec.GetProperty("first_code").GetString()!, (int)N(rec, "first_lsb"), N(verify, "lost_bytes"), N(verify, "verified_bytes"), N(verify, "mismatched_keys"),
            N(verify, "lost_page_touches_ar_lsb12") > 0 ? 12 : 0, N(rec, "bytes_copied"),
            (N(One("threads"), "peak_shmem_kB") - N(filled, "Shmem_kB")) * 1024, (N(after, "Shmem_kB") - N(filled, "Shmem_kB")) * 1024,
            giga ? N(before, "1G_free") - N(released, "1G_free") : N(before, "HugePages_Free") - N(released, "HugePages_Free"),
            N(after, "HardwareCorrupted_kB") - N(filled, "HardwareCorrupted_kB"),
            N(rec, "total_ns"), N(rec, "scan_ns"), N(rec, "fill_ns"), N(rec, "swap_ns"), Median("memcpy_idle_ns"), Median("memcpy_busy_ns"),
            N(sharer, "unreadable_bytes_total"), N(sharer, "sharer_exit") == 135, (int)N(One("signals"), "ao_lsb"));
    }
}

/// <summary>A run in which <c>Protect</c> refused (a kernel older than 6.6): the reasons, and whether anything changed.</summary>
public sealed record RealRefusal(string Key, string Kernel, IReadOnlyList<string> Kinds, bool NothingChanged)
{
    /// <summary>Reads a run's JSON lines; null if the file has no refusal record.</summary>
    public static RealRefusal? Read(string path)
    {
        JsonElement? protect = null, refusal = null;
        foreach (var line in File.ReadLines(path))
        {
            if (!line.StartsWith("{\"demo\"", StringComparison.Ordinal)) continue;
            using var doc = JsonDocument.Parse(line);
            switch (doc.RootElement.GetProperty("step").GetString())
            {
                case "protect": protect = doc.RootElement.Clone(); break;
                case "refusal": refusal = doc.RootElement.Clone(); break;
            }
        }
        if (protect is not { } p || refusal is not { } r) return null;
        return new RealRefusal(p.GetProperty("demo").GetString()!, p.GetProperty("kernel").GetString()!,
            p.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("kind").GetString()!).ToList(), r.GetProperty("nothing_changed").GetBoolean());
    }
}

/// <summary>One quantity, predicted by the model's policy and measured on the real kernel.</summary>
public sealed record RecoveryRow(string Quantity, string Model, string Linux, bool? Agree, string Note);

/// <summary>The model-versus-reality table of one recovery case.</summary>
public sealed record RecoveryCase(string Key, string Scenario, string Kernel, IReadOnlyList<RecoveryRow> Rows)
{
    public int Agreeing => Rows.Count(r => r.Agree == true);
    public int Differing => Rows.Count(r => r.Agree == false);
}

/// <summary>
/// The model's <c>userspace-migrate</c> policy on the situation of each HugeFault.Recovery.Demo case next to what the
/// demo measured on Linux: inaccessible bytes, good data lost, extra memory, bytes copied, pool pages lost, signals, time.
/// </summary>
public static class RecoveryReality
{
    public const string RecordedDir = "tools/realkernel/recovery-results";

    /// <summary>Demo case (recovery.sh) and the built-in scenario that describes the same situation.</summary>
    public static readonly IReadOnlyList<(string Key, string Scenario)> Cases =
        [("2m", "recovery/kv-store-2m.yaml"), ("2m-corrupt-pfn", "recovery/kv-store-corrupt-pfn-2m.yaml"), ("1g", "recovery/kv-store-1g.yaml"),
         ("2m-shared", "recovery/kv-store-shared-2m.yaml"), ("refusal", "recovery/kv-store-6.1-refused.yaml")];

    /// <summary>The comparison for one recorded run (a recovery or a refusal); null if the file holds neither.</summary>
    public static RecoveryCase? CompareFile(string key, Scenario sc, string path) =>
        RealRecovery.Read(path) is { } real ? Compare(key, sc, real) : RealRefusal.Read(path) is { } refusal ? Compare(key, sc, refusal) : null;

    /// <summary>A kernel without the needed features: the model's policy on that kernel version next to Protect's refusal.</summary>
    public static RecoveryCase Compare(string key, Scenario sc, RealRefusal real)
    {
        var run = ScenarioRunner.Run(sc, "userspace-migrate", sc.Host.PolicyParams);
        var k = run.Kernel;
        bool refused = k.Trace.OfType<ActionEvent>().Any(a => a.Text.StartsWith("refused: Linux", StringComparison.Ordinal));
        bool modelPoison = (k.UffdFeaturesKnown & Mm.Userfaultfd.UFFD_FEATURE_POISON) != 0, realPoison = !real.Kinds.Contains("NoUffdPoison");
        var rows = new List<RecoveryRow>
        {
            new("the agent", refused ? $"refuses (kernel_version {k.Config.KernelVersion})" : "recovers", $"refuses at Protect: {string.Join(", ", real.Kinds)}", refused && real.Kinds.Count > 0, ""),
            new("UFFD_FEATURE_POISON offered", modelPoison ? "yes" : "no", realPoison ? "yes" : "no", modelPoison == realPoison, "UFFDIO_API of a probe userfaultfd"),
            new("process changed by the refusal", "-", real.NothingChanged ? "no (maps line, threads, SIGBUS handler)" : "yes", null, "the model has no Protect step"),
            new("inaccessible bytes after an error", Units.Size((ulong)Comparison.Measure(run).InaccessibleBytes), "-", null, "mainline's whole huge page; the demo stops after the refusal"),
        };
        return new RecoveryCase(key, sc.File, real.Kernel, rows);
    }

    public static RecoveryCase Compare(string key, Scenario sc, RealRecovery real)
    {
        // the model's copy time at the bandwidth this guest's plain memcpy reached (idle), so both sides copy equally fast
        var p = new Dictionary<string, string>(sc.Host.PolicyParams);
        double gbps = real.MemcpyIdleNs > 0 ? real.PageSize / (double)real.MemcpyIdleNs : 10.0;
        p["bandwidth_gbps"] = gbps.ToString("R", CultureInfo.InvariantCulture);
        var run = ScenarioRunner.Run(sc, "userspace-migrate", p);
        var m = Comparison.Measure(run);
        var k = run.Kernel;
        bool refused = k.Trace.OfType<ActionEvent>().Any(a => a.Text.Contains("refused", StringComparison.Ordinal));
        var sigs = k.Trace.OfType<SignalEvent>().ToList();
        var rows = new List<RecoveryRow>();
        void Bytes(string q, long model, long linux, string note = "") =>
            rows.Add(new(q, Units.Size((ulong)Math.Max(0, model)), Units.Size((ulong)Math.Max(0, linux)), model == linux, note));
        rows.Add(new("the agent", refused ? "refuses (another process maps the file)" : "recovers", real.Outcome == "Recovered" ? "recovers" : $"{real.Outcome.ToLowerInvariant()} (another process maps the file)",
            refused == (real.Outcome != "Recovered"), ""));
        var first = sigs.FirstOrDefault();
        string modelFirst = first is null ? "none" : $"{first.SiCodeName} lsb {first.SiAddrLsb}", realFirst = $"{real.FirstCode} lsb {real.FirstLsb}";
        // which report reaches the agent first depends on the threads touching the page while memory_failure() runs (Linux);
        // the model runs one step at a time, so only the si_addr_lsb of the first report is compared
        rows.Add(new("first report of the error", modelFirst, realFirst, first?.SiAddrLsb == real.FirstLsb,
            modelFirst == realFirst ? "" : "lsb compared; on Linux a worker touching the page after the unmap reported it before the early-kill notice arrived"));
        var ao = sigs.FirstOrDefault(s => s.SiCode == Sig.BUS_MCEERR_AO);
        if (ao is not null || real.AoLsb != 0)
            rows.Add(new("early-kill notice to the agent's thread", ao is null ? "none" : $"BUS_MCEERR_AO lsb {ao.SiAddrLsb}", real.AoLsb == 0 ? "none" : $"BUS_MCEERR_AO lsb {real.AoLsb}",
                (ao?.SiAddrLsb ?? 0) == real.AoLsb, "PR_MCE_KILL_EARLY on the agent's thread; the debugfs writer is not signalled"));
        if (real.Outcome == "Recovered")
        {
            var last = sigs.LastOrDefault();
            string modelTouch = last is null ? "none" : $"{last.SiCodeName} lsb {last.SiAddrLsb}", realTouch = real.LaterTouchLsb == 0 ? "not seen" : $"BUS_MCEERR_AR lsb {real.LaterTouchLsb}";
            rows.Add(new("later touch of the lost 4 KiB", modelTouch, realTouch, modelTouch == realTouch, ""));
            Bytes("inaccessible bytes", m.InaccessibleBytes, real.LostBytes);
            Bytes("good data lost", m.GoodDataLostBytes, real.LostBytes + real.MismatchedKeys * 512,
                "software injection poisons a whole raw page: no 64-byte line is known bad on either side");
            Bytes("bytes copied", k.Stats.BytesCopied, real.BytesCopied);
            Bytes("extra memory at peak", m.ExtraPeakBytes, real.ExtraPeakBytes, "Linux: Shmem growth (meminfo sampled every 2 ms)");
            Bytes("extra memory afterwards", k.Stats.ExtraBytesNow, real.ExtraAfterBytes, "the tmpfs copy stays; the poisoned huge page is not freed");
        }
        else
        {
            long perProcess = real.PageSize;
            Bytes("inaccessible bytes (both processes)", m.InaccessibleBytes, real.SharerUnreadableBytes + (real.SharerKilled ? perProcess : 0),
                real.SharerKilled ? "Linux: the agent's process gets SIGBUS for the whole page; the other was killed by SIGBUS touching it" : "");
            Bytes("extra memory at peak", m.ExtraPeakBytes, 0);
        }
        rows.Add(new("pool pages lost", m.PoolHugePagesLost.ToString(CultureInfo.InvariantCulture), real.PoolPagesLost.ToString(CultureInfo.InvariantCulture),
            m.PoolHugePagesLost == real.PoolPagesLost, "Linux: HugePages_Free after unmapping and closing everything"));
        long hwc = k.NumPoisonedPages * 4;
        rows.Add(new("HardwareCorrupted", $"+{hwc} kB", $"+{real.HardwareCorruptedKb} kB", hwc == real.HardwareCorruptedKb, ""));
        if (real.Outcome == "Recovered")
        {
            double modelMs = m.InaccessibleNs / 1e6, realMs = real.RecoveryNs / 1e6;
            rows.Add(new("recovery time", $"{modelMs:0.#} ms (copy at {gbps * 1000:0} MB/s)", $"{realMs:0.#} ms", null,
                $"Linux = {realMs / Math.Max(modelMs, 1e-9):0.0}x the model: /proc check {real.ScanNs / 1e6:0.#} ms, replacement + pread {real.FillNs / 1e6:0.#} ms, "
                + $"markers + mremap {real.SwapNs / 1e6:0.#} ms; the model counts only the copy, at this guest's idle memcpy speed"));
        }
        return new RecoveryCase(key, sc.File, real.Kernel, rows);
    }
}

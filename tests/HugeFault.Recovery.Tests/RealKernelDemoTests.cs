using System.Diagnostics;
using System.Text.Json;

namespace HugeFault.Recovery.Tests;

/// <summary>
/// The 2 MiB demo on the real kernel (Debian 6.12 under qemu, tools/realkernel/recovery.sh 2m). Runs only when
/// HUGEFAULT_REALKERNEL=1, which .ci/run sets after tools/realkernel/setup.sh succeeded; otherwise skipped.
/// </summary>
public class RealKernelDemoTests
{
    private static string Repo()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "HugeFault.slnx"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("HugeFault.slnx not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task On_linux_6_12_the_store_survives_a_2MiB_poison_losing_exactly_the_poisoned_4K()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("HUGEFAULT_REALKERNEL") == "1",
            "HUGEFAULT_REALKERNEL=1 not set (.ci/run sets it when tools/realkernel/setup.sh works)");
        string repo = Repo(), dir = Path.Combine(Path.GetTempPath(), "hugefault-recovery-" + Guid.NewGuid().ToString("N")[..8]);
        var psi = new ProcessStartInfo("bash", [Path.Combine(repo, "tools/realkernel/recovery.sh"), "--timeout", "240", "--out", dir, "2m"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(600));
        try { await p.WaitForExitAsync(limit.Token); }
        catch (OperationCanceledException) { p.Kill(true); Assert.Fail("recovery.sh 2m did not finish in 600 s"); }
        string output = await stdout, errors = await stderr;
        TestContext.Current.SendDiagnosticMessage($"recovery demo on the real kernel: {sw.Elapsed.TotalSeconds:0}s\n{output}");
        Assert.True(p.ExitCode == 0, $"recovery.sh 2m exited {p.ExitCode}:\n{output}\n{errors}");

        var lines = File.ReadLines(Path.Combine(dir, "2m.jsonl")).Where(l => l.StartsWith("{\"demo\"", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        JsonElement Step(string s) => lines.Single(l => l.GetProperty("step").GetString() == s);
        Assert.StartsWith("6.12.", Step("config").GetProperty("kernel").GetString());
        var rec = Step("recovery");
        Assert.Equal("Recovered", rec.GetProperty("outcome").GetString());
        Assert.Equal([0x5000L], rec.GetProperty("lost_offsets").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal((2L << 20) - 4096, rec.GetProperty("bytes_copied").GetInt64());
        var v = Step("verify");
        Assert.True(v.GetProperty("ok").GetBoolean());
        Assert.Equal([0x205000L], v.GetProperty("lost_pages").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(0, v.GetProperty("mismatched_keys").GetInt64());
        Assert.Equal(8L * (1 << 20) - 4096, v.GetProperty("verified_bytes").GetInt64());
        Assert.True(v.GetProperty("lost_page_touches_ar_lsb12").GetInt64() > 0, "no later touch of the lost page was reported with si_addr_lsb 12");
        Directory.Delete(dir, true);
    }
}

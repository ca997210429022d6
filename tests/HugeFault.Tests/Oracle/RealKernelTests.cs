using System.Diagnostics;
using HugeFault.Oracle;
using HugeFault.Scenarios;

namespace HugeFault.Tests.Oracle;

/// <summary>
/// The real-kernel differential check on a few 2 MiB scenarios, on Debian's 6.12 and 6.1. Runs only when HUGEFAULT_REALKERNEL=1,
/// which .ci/run sets after tools/realkernel/setup.sh succeeded (qemu installable); otherwise skipped.
/// </summary>
public class RealKernelTests
{
    private static readonly string[] Smoke =
    [
        "conformance/mainline/09-pread-across-poison-chunk-4K", // memfd, store, madvise injector SIGBUS, read loop up to the poison
        "conformance/mainline/05-inuse-shared-injector-2m",     // two processes (fork, driven over pipes), injector AR during madvise
        "conformance/mainline/21-uffdio-poison",                // userfaultfd: blocked loads resumed by UFFDIO_POISON / UFFDIO_COPY
        "peers/mce-test/tinjpage-hugepages-suicide",            // processes that die of SIGBUS; hugetlbfs file, SysV SHM_HUGETLB
    ];

    [Fact]
    public void Two_MiB_smoke_scenarios_on_the_real_kernel_agree_with_the_recorded_traces()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("HUGEFAULT_REALKERNEL") == "1",
            "HUGEFAULT_REALKERNEL=1 not set (.ci/run sets it when tools/realkernel/setup.sh works)");
        string repo = OracleDiffTests.Repo;
        var scs = Smoke.Select(k => ScenarioParser.ParseFile(Path.Combine(repo, "scenarios", k + ".yaml")).Scenario!).ToList();
        string dir = Path.Combine(Path.GetTempPath(), "hugefault-oracle-" + Guid.NewGuid().ToString("N")[..8]);
        var log = new StringWriter();
        var sw = Stopwatch.StartNew();
        // every smoke scenario on 6.12; on 6.1 those in range (05-…-2m: 6.1 does not signal the injector)
        var kernels = OracleSession.RunReal(scs, repo, dir, 180, log, OracleKernels.Known);
        TestContext.Current.SendDiagnosticMessage($"real-kernel smoke: {sw.Elapsed.TotalSeconds:0}s\n{log}");
        Assert.True(kernels is not null, "harness failed:\n" + log);
        Assert.StartsWith("6.12.", kernels[OracleKernels.Default]);
        Assert.StartsWith("6.1.", kernels["6.1"]);
        int compared = 0;
        foreach (var sc in scs)
            foreach (var series in OracleKernels.Known)
            {
                var fresh = OracleSession.CompareRecorded(sc, dir, series);
                if (fresh.Status == "model-only") continue;
                var recorded = OracleSession.CompareRecorded(sc, Path.Combine(repo, OracleSession.RecordedDir), series);
                Assert.Equal("compared", fresh.Status);
                Assert.True(fresh.RealPassed, $"{fresh.Key} @{series}: expectations fail on Linux:\n" + string.Join("\n", fresh.Steps.SelectMany(s => s.RealFailures)));
                Assert.Equal(Mismatches(recorded), Mismatches(fresh));
                compared++;
            }
        Assert.Equal(6, compared);
        Directory.Delete(dir, true);
    }

    internal static List<string> Mismatches(OracleScenarioResult r) =>
        r.Steps.SelectMany(s => s.Mismatches.Select(f => $"step {s.Index} {f.Field}: model {f.Model} / real {f.Real}")).ToList();
}

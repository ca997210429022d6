using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Tests;

/// <summary>The native agent (the machine code that runs in production) against the fake kernel, driven by real signals.</summary>
[Collection("native agent")]
public class AgentTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public void An_early_kill_notice_recovers_the_huge_page_and_loses_only_the_poisoned_4K()
    {
        using var rig = new Rig(pages: 2);
        rig.Poison(Rig.M2 + 0x5000);
        Assert.True(rig.Protect().Ok);
        Rig.SendSigbus(BUS_MCEERR_AO, rig.Base + (nint)Rig.M2 + 0x5000, 21);
        Assert.True(rig.Agent.WaitForRecoveries(1, Wait));

        var r = Assert.Single(rig.Agent.Recoveries);
        Assert.Equal(RecoveryOutcome.Recovered, r.Outcome);
        Assert.Equal("", r.Reason);
        Assert.Equal(rig.Base + (nint)Rig.M2, r.Address);
        Assert.Equal([0x5000L], r.LostOffsets);
        Assert.Equal(Rig.M2 - 4096, r.BytesCopied);
        Assert.Equal(1, r.PoisonCalls);
        Assert.Equal((BUS_MCEERR_AO, 21), (r.FirstCode, r.FirstLsb));
        Assert.True(r.Total > TimeSpan.Zero);
        rig.AssertContent(Rig.M2 + 0x5000);
        var moved = rig.K.MappingAt((ulong)r.Address)!;
        Assert.Equal(("memfd", (ulong)Rig.M2), (moved.Kind, moved.Len));
        Assert.Equal([(ulong)r.Address + 0x5000], moved.Markers);
        Assert.Equal("hugetlb", rig.K.MappingAt((ulong)rig.Base)!.Kind); // the other huge page is left alone
        Assert.True(rig.Agent.IsLost(r.Address + 0x5000));
        Assert.False(rig.Agent.IsLost(r.Address + 0x6000));
        Assert.Equal(["memfd_create", "ftruncate", "mmap", "pread64", "pread64", "pread64", "madvise", "madvise",
            "UFFDIO_REGISTER", "UFFDIO_POISON", "UFFDIO_UNREGISTER", "mremap", "mmap"], rig.RecoveryCalls());
        var sig = Assert.Single(rig.Agent.Signals());
        Assert.Equal(("ao-noted", BUS_MCEERR_AO), (sig.Action, sig.Code));
    }

    [Fact]
    public void A_thread_that_touches_the_page_waits_in_the_handler_and_retries_after_the_swap()
    {
        using var rig = new Rig(pages: 1, setup: k => k.PreadDelayMs = 100);
        rig.Poison(0x1f3000);
        Assert.True(rig.Protect().Ok);
        // BUS_MCEERR_AR as a consumed error delivers it: the handler must not return before the page is replaced
        Rig.SendSigbus(BUS_MCEERR_AR, rig.Base + 0x1f3040, 21);
        Assert.True(rig.Agent.IsLost(rig.Base + 0x1f3000)); // already replaced when the handler let the thread go
        var sig = Assert.Single(rig.Agent.Signals());
        Assert.Equal("retried", sig.Action);
        Assert.True(sig.Blocked >= TimeSpan.FromMilliseconds(100), $"blocked {sig.Blocked}");
        Assert.True(rig.Agent.WaitForRecoveries(1, Wait));
        Assert.Equal([0x1f3000L], rig.Agent.Recoveries[0].LostOffsets);
        rig.AssertContent(0x1f3000);
    }

    [Fact]
    public void Runs_of_lost_pages_take_one_UFFDIO_POISON_each()
    {
        using var rig = new Rig(pages: 1);
        long[] bad = [0, 0x1000, 0x2000, 0x80000, 0x1ff000];
        rig.Poison(bad);
        Assert.True(rig.Protect().Ok);
        Rig.SendSigbus(BUS_MCEERR_AO, rig.Base + 0x80000, 21);
        Assert.True(rig.Agent.WaitForRecoveries(1, Wait));
        var r = rig.Agent.Recoveries[0];
        Assert.Equal(bad, r.LostOffsets);
        Assert.Equal(3, r.PoisonCalls);
        Assert.Equal(Rig.M2 - 5 * 4096, r.BytesCopied);
        rig.AssertContent(bad);
    }

    [Fact]
    public void Another_process_mapping_the_file_makes_the_agent_refuse_and_change_nothing()
    {
        using var rig = new Rig(pages: 1);
        rig.K.Procs[4242] = new FakeKernel.FakeProc { Maps = "00400000-00401000 r-xp 00000000 08:01 77   /usr/bin/vhost\n" + FakeKernel.MapsLineFor(rig.K.FileOf(rig.Fd), 0x7f0000000000), Comm = "vhost-user" };
        var r = rig.PoisonAndNotify(0x5000);
        Assert.Equal(RecoveryOutcome.Refused, r.Outcome);
        Assert.Equal(4242, r.OtherPid);
        Assert.Contains("process 4242 (vhost-user) also maps or holds the file", r.Reason);
        Assert.Empty(rig.RecoveryCalls());
        Assert.Equal("hugetlb", rig.K.MappingAt((ulong)rig.Base)!.Kind);
        rig.AssertContent();
    }

    [Fact]
    public void Another_process_holding_the_file_open_is_found_through_its_fd_links()
    {
        using var rig = new Rig(pages: 1);
        var f = rig.K.FileOf(rig.Fd);
        rig.K.Procs[4243] = new FakeKernel.FakeProc { Maps = "", Fds = [("0", 0x16, 3), ("7", f.Dev, f.Ino)] };
        var r = rig.PoisonAndNotify(0x5000);
        Assert.Equal((RecoveryOutcome.Refused, 4243), (r.Outcome, r.OtherPid));
    }

    [Theory]
    [InlineData(false, RecoveryOutcome.Recovered)]
    [InlineData(true, RecoveryOutcome.Refused)]
    public void A_process_that_cannot_be_inspected_is_counted_and_refused_only_in_strict_mode(bool strict, RecoveryOutcome expected)
    {
        using var rig = new Rig(pages: 1, options: new RecoveryOptions { StrictProcessScan = strict });
        rig.K.Procs[4244] = new FakeKernel.FakeProc { MapsErr = -EACCES, FdErr = -EACCES };
        var r = rig.PoisonAndNotify(0x5000);
        Assert.Equal((expected, 1), (r.Outcome, r.Uninspected));
    }

    [Theory]
    [InlineData("UFFDIO_POISON", -EEXIST, "UFFDIO_POISON: EEXIST")]
    [InlineData("pread64", -EFAULT, "pread of the good data: EFAULT")]
    [InlineData("memfd_create", -ENOMEM, "memfd_create: ENOMEM")]
    public void A_failing_step_undoes_the_replacement_and_leaves_the_huge_page_as_mainline_does(string call, long err, string reason)
    {
        using var rig = new Rig(pages: 1, setup: k => k.Fail = c => c == call ? err : null);
        var r = rig.PoisonAndNotify(0x5000);
        Assert.Equal(RecoveryOutcome.Failed, r.Outcome);
        Assert.Equal("failed at " + reason, r.Reason);
        Assert.DoesNotContain("mremap", rig.RecoveryCalls());
        Assert.Equal("hugetlb", rig.K.MappingAt((ulong)rig.Base)!.Kind);
        if (call != "memfd_create")
        {
            Assert.Contains(rig.K.Calls, c => c.StartsWith("close", StringComparison.Ordinal)); // the replacement memfd
            Assert.Equal("anon", rig.K.Maps.Single(m => m.Prot == PROT_NONE && m.Len == Rig.M2).Kind); // temporary VA reserved again
        }
        rig.AssertContent();
    }

    [Fact]
    public void A_failed_mremap_maps_the_hugetlb_file_back_over_the_range()
    {
        using var rig = new Rig(pages: 1, setup: k => k.Fail = c => c == "mremap" ? -ENOMEM : null);
        Assert.Equal("failed at mremap over the huge page: ENOMEM", rig.PoisonAndNotify(0x5000).Reason);
        string readFd = rig.K.Calls.First(c => c.StartsWith("pread64", StringComparison.Ordinal)).Split(' ')[1]; // the agent's own fd of the file
        Assert.Contains($"mmap {rig.Base:x} {Rig.M2:x} prot=3 flags=0x11 fd={readFd}", rig.K.Calls);
        Assert.Equal("hugetlb", rig.K.MappingAt((ulong)rig.Base)!.Kind);
    }

    [Fact]
    public void A_notice_for_memory_outside_every_protected_range_is_ignored()
    {
        using var rig = new Rig(pages: 1);
        Assert.True(rig.Protect().Ok);
        Rig.SendSigbus(BUS_MCEERR_AO, rig.Base + (nint)(4 * Rig.M2), 21);
        Assert.False(rig.Agent.WaitForRecoveries(1, TimeSpan.FromMilliseconds(300)));
        Assert.Equal("ao-ignored", Assert.Single(rig.Agent.Signals()).Action);
        Assert.Empty(rig.RecoveryCalls());
    }
}

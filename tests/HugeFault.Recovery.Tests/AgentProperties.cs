using CsCheck;
using HugeFault.Tests.Properties;
using HugeFault.Recovery.Kernel;
using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Tests;

/// <summary>Properties of the native agent over random sets of poisoned raw pages, and of its checked copy on a real fault.</summary>
[Collection("native agent")]
public class AgentProperties
{
    [Fact]
    public void For_any_poisoned_raw_pages_exactly_those_are_lost_and_every_other_byte_survives()
    {
        // 512 raw pages per 2 MiB folio; sets from one page up to a quarter of the folio, runs included
        var gen = Gen.Int[0, 511].Array[1, 128].Select(a => a.Distinct().Order().ToArray());
        Pbt.Run(gen, bad =>
        {
            using var rig = new Rig(pages: 1);
            rig.Poison(bad.Select(b => (long)b << PAGE_SHIFT).ToArray());
            Assert.True(rig.Protect().Ok);
            Rig.SendSigbus(BUS_MCEERR_AO, rig.Base + (bad[0] << PAGE_SHIFT), 21);
            Assert.True(rig.Agent.WaitForRecoveries(1, TimeSpan.FromSeconds(20)));
            var r = rig.Agent.Recoveries[0];
            int runs = bad.Where((b, i) => i == 0 || bad[i - 1] != b - 1).Count();
            Assert.Equal(RecoveryOutcome.Recovered, r.Outcome);
            Assert.Equal(bad.Select(b => (long)b << PAGE_SHIFT), r.LostOffsets);
            Assert.Equal(runs, r.PoisonCalls);
            Assert.Equal(Rig.M2 - bad.Length * 4096L, r.BytesCopied);
            Assert.Equal(bad.Select(b => (ulong)rig.Base + ((ulong)b << PAGE_SHIFT)).ToHashSet(), rig.K.MappingAt((ulong)rig.Base)!.Markers);
            rig.AssertContent(r.LostOffsets.ToArray());
        }, iter: 25, stream: 44); // one agent (one SIGBUS handler, one fake kernel) at a time (Pbt runs one case at a time)
    }

    [Fact]
    public unsafe void A_checked_copy_that_meets_a_real_SIGBUS_returns_the_bytes_not_copied()
    {
        using var rig = new Rig(pages: 1);
        Assert.True(rig.Protect().Ok); // installs the handler
        // a real fault: the second page of a one-page memfd mapped two pages long (BUS_ADRERR, not a memory error)
        var k = LinuxKernel.Instance;
        byte* name = stackalloc byte[] { (byte)'t', 0 };
        long fd = k.Syscall(__NR_memfd_create, (long)name, MFD_CLOEXEC);
        Assert.True(fd >= 0);
        Assert.Equal(0, k.Syscall(__NR_ftruncate, fd, 4096));
        long p = k.Syscall(__NR_mmap, 0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        Assert.True(p > 0);
        new Span<byte>((void*)p, 4096).Fill(0x5a);
        byte* dst = stackalloc byte[200];
        nuint left = rig.Agent.CopyChecked(dst, (void*)(p + 4000), 200);
        Assert.Equal((nuint)104, left);
        Assert.Equal(96, new ReadOnlySpan<byte>(dst, 96).Count((byte)0x5a));
        var sig = Assert.Single(rig.Agent.Signals());
        Assert.Equal(("fixup", BUS_ADRERR, (ulong)p + 4096), (sig.Action, sig.Code, sig.Addr));
        k.Syscall(__NR_munmap, p, 8192);
        k.Syscall(__NR_close, fd);
    }
}

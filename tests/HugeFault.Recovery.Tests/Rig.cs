using HugeFault.Recovery.Kernel;
using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Tests;

/// <summary>Tests that install the agent's SIGBUS handler or run its native thread do so one at a time.</summary>
[CollectionDefinition("native agent", DisableParallelization = true)]
public sealed class NativeAgentCollection;

/// <summary>A fake kernel with one hugetlb memfd mapped MAP_SHARED, and an agent over that kernel.</summary>
internal sealed unsafe class Rig : IDisposable
{
    public const long M2 = 2L << 20;
    public readonly FakeKernel K = new();
    public readonly RecoveryAgent Agent;
    public readonly int Fd;
    public readonly nint Base;
    public readonly long Size;

    public static byte Pattern(long off) => (byte)(off * 31 + (off >> 12) * 7 + 1);

    public Rig(int pages = 2, RecoveryOptions? options = null, Action<FakeKernel>? setup = null)
    {
        setup?.Invoke(K);
        Size = pages * M2;
        Fd = K.CreateHugetlbFile(Size, M2, Pattern);
        Base = K.MapHugetlb(Fd);
        Agent = new RecoveryAgent(K, options);
    }

    public ProtectResult Protect() => Agent.ProtectRange(Fd, Base, Size);

    /// <summary>Marks raw pages of the file poisoned (what memory_failure() recorded on the folio's raw_hwp_list).</summary>
    public void Poison(params long[] fileOffsets)
    {
        foreach (var o in fileOffsets) K.FileOf(Fd).Poisoned.Add(o >> PAGE_SHIFT);
    }

    /// <summary>Poisons the raw page at <paramref name="fileOffset"/>, protects the range, sends the early-kill notice for it and waits for the agent.</summary>
    public PageRecovery PoisonAndNotify(long fileOffset)
    {
        Poison(fileOffset);
        Assert.True(Protect().Ok);
        SendSigbus(BUS_MCEERR_AO, Base + (nint)fileOffset, 21);
        Assert.True(Agent.WaitForRecoveries(1, TimeSpan.FromSeconds(20)));
        return Agent.Recoveries[0];
    }

    /// <summary>A real SIGBUS with the given si_code/si_addr/si_addr_lsb to this thread (rt_tgsigqueueinfo to oneself may carry a positive si_code).</summary>
    public static void SendSigbus(int code, nint addr, int lsb)
    {
        var k = LinuxKernel.Instance;
        byte* si = stackalloc byte[128];
        new Span<byte>(si, 128).Clear();
        *(int*)si = SIGBUS; *(int*)(si + 8) = code; *(ulong*)(si + 16) = (ulong)addr; *(short*)(si + 24) = (short)lsb;
        long r = k.Syscall(__NR_rt_tgsigqueueinfo, Environment.ProcessId, k.Syscall(__NR_gettid), SIGBUS, (long)si);
        Assert.Equal(0, r);
    }

    /// <summary>Every byte of the range equals the pattern, except the listed 4 KiB pages, which hold the fake's marker fill.</summary>
    public void AssertContent(params long[] lostOffsets)
    {
        var lost = lostOffsets.Select(o => o >> PAGE_SHIFT).ToHashSet();
        byte* p = (byte*)Base;
        for (long off = 0; off < Size; off++)
        {
            byte want = lost.Contains(off >> PAGE_SHIFT) ? FakeKernel.MarkerFill : Pattern(off);
            if (p[off] != want) Assert.Fail($"byte at +0x{off:x} is 0x{p[off]:x2}, expected 0x{want:x2}");
        }
    }

    /// <summary>The fake kernel calls from the first memfd_create on, by name.</summary>
    public List<string> RecoveryCalls() => K.Calls.SkipWhile(c => !c.StartsWith("memfd_create", StringComparison.Ordinal)).Select(c => c.Split(' ')[0]).ToList();

    public void Dispose()
    {
        Agent.Dispose();
        Assert.Empty(K.Errors);
        K.Dispose();
    }
}

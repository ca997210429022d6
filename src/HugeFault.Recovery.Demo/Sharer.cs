using System.Diagnostics;
using System.Globalization;
using HugeFault.Recovery.Kernel;
using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Demo;

/// <summary>
/// The shared-file case: a second process maps the same memfd. The agent must refuse (replacing only its own
/// mapping would split the shared memory, and punching the hugetlbfs page would zero the other's data), so
/// both processes see what mainline gives them: the whole huge page faults, nothing is silently replaced.
/// </summary>
internal sealed unsafe class SharerCheck(Output out_, KvStore store, RecoveryAgent agent, DemoOptions o)
{
    public int Finish(Process sharer, byte* baseAddr, List<PageRecovery> events)
    {
        // every key, by huge page: readable and right, or refused with a SIGBUS through the checked copy
        var unreadable = new long[o.Pages];
        long okBytes = 0;
        ulong* buf = stackalloc ulong[KvStore.Words];
        for (int k = 0; k < store.Keys; k++)
        {
            long off = (long)k * KvStore.Slot;
            if (agent.CopyChecked(buf, baseAddr + off, KvStore.Slot) != 0) unreadable[off / o.PageSize] += KvStore.Slot;
            else okBytes += KvStore.Slot;
        }
        var lsb = agent.Signals().Where(s => s.Code == BUS_MCEERR_AR && s.Action == "fixup").Select(s => s.AddrLsb).Distinct().ToList();
        // the sharer touches the poisoned page with an ordinary load: mainline kills it
        long touch = o.TargetPage * o.PageSize + 0x100;
        sharer.StandardInput.WriteLine(touch.ToString(CultureInfo.InvariantCulture));
        sharer.StandardInput.Flush();
        string? said = sharer.StandardOutput.ReadLine();
        bool exited = sharer.WaitForExit(60_000);
        int code = exited ? sharer.ExitCode : -1;
        var ev = events.FirstOrDefault();
        bool ok = ev is { Outcome: RecoveryOutcome.Refused } && ev.OtherPid == sharer.Id && unreadable[o.TargetPage] == o.PageSize
            && unreadable.Sum() == o.PageSize && code == 128 + SIGBUS;
        out_.Line("sharer", w =>
        {
            w.WriteNumber("pid", sharer.Id); w.WriteBoolean("refused", ev?.Outcome == RecoveryOutcome.Refused); w.WriteString("reason", ev?.Reason ?? "");
            w.WriteNumber("unreadable_bytes_in_target", unreadable[o.TargetPage]); w.WriteNumber("unreadable_bytes_total", unreadable.Sum());
            w.WriteNumber("readable_bytes", okBytes); w.WriteString("sharer_said", said ?? ""); w.WriteNumber("sharer_exit", code);
            w.WriteStartArray("checked_copy_lsb"); foreach (var l in lsb) w.WriteNumberValue(l); w.WriteEndArray();
            w.WriteBoolean("ok", ok);
        });
        out_.Say($"shared file: {(ev is null ? "no event" : ev.Reason)}");
        out_.Say($"nothing silently lost: this process reads {Output.Size(okBytes)} as written and gets SIGBUS (si_addr_lsb {string.Join("/", lsb)}) for the whole "
            + $"{Output.Size(unreadable[o.TargetPage])} of the poisoned huge page, as on mainline; the sharer touching it {(code == 128 + SIGBUS ? "was killed by SIGBUS, as on mainline" : $"exited {code} ({said})")}");
        out_.Say(ok ? "RESULT: refused safely" : "RESULT: FAILED");
        return ok ? 0 : 1;
    }

    /// <summary>The second process: maps the file through /proc/PID/fd/N, says "ready", then touches the offset it is given.</summary>
    public static int RunChild(string path, long size)
    {
        var k = LinuxKernel.Instance;
        long fd = KernelCalls.OpenAt(k, path, O_RDWR | O_CLOEXEC);
        if (fd < 0) { Console.WriteLine($"open {path}: {ErrnoName(fd)}"); return 2; }
        long p = k.Syscall(__NR_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p < 0 && p > -4096) { Console.WriteLine($"mmap: {ErrnoName(p)}"); return 2; }
        ulong sum = 0;
        for (long off = 0; off < size; off += 1L << 21) sum += ((byte*)p)[off];
        Console.WriteLine("ready");
        Console.Out.Flush();
        var line = Console.ReadLine();
        if (line is null || !long.TryParse(line, NumberStyles.Integer, CultureInfo.InvariantCulture, out long touch)) return 2;
        sum += ((byte*)p)[touch];
        Console.WriteLine($"survived the touch ({sum})");
        return 0;
    }
}

/// <summary>The current SIGBUS handler (sigaction query), to show a refusal left it alone.</summary>
internal static unsafe partial class Sigaction
{
    [System.Runtime.InteropServices.LibraryImport("libc.so.6", EntryPoint = "sigaction")]
    private static partial int sigaction(int sig, void* act, void* oldact);

    public static ulong Current()
    {
        byte* old = stackalloc byte[152];
        return sigaction(SIGBUS, null, old) == 0 ? *(ulong*)old : ulong.MaxValue;
    }
}

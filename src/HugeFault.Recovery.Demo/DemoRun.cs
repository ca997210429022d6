using System.Diagnostics;
using System.Globalization;
using HugeFault.Recovery.Kernel;
using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Demo;

/// <summary>The demo's settings (see Program.cs for the command line).</summary>
internal sealed record DemoOptions(string Key, long PageSize, int Pages, string Inject, long Offset, int TargetPage, int Threads, int Repeat,
    string Thp, bool Sharer, bool ExpectRefusal, int BenchReps, int RunMs, bool Allocator);

/// <summary>
/// One run: fill the store, Protect it, run workers, inject memory errors into live huge pages, wait for the agent,
/// verify every byte, measure recovery against a plain copy, release everything and read the counters.
/// </summary>
internal sealed unsafe class DemoRun(DemoOptions o, Output out_)
{
    private readonly List<PageRecovery> _events = [];
    private readonly Kmsg _kmsg = new();
    private readonly Bench.Samples _busy = new([], []);
    private byte* _base;

    public int Execute()
    {
        if (o.Thp != "keep" && Guest.SetShmemThp(o.Thp) is { } thpErr) out_.Say($"cannot set shmem_enabled={o.Thp}: {thpErr}");
        long size = o.Pages * o.PageSize;
        out_.Line("config", w =>
        {
            w.WriteNumber("page_size", o.PageSize); w.WriteNumber("pages", o.Pages); w.WriteString("inject", o.Inject);
            w.WriteNumber("offset", o.Offset); w.WriteNumber("target_page", o.TargetPage); w.WriteNumber("threads", o.Threads);
            w.WriteNumber("repeat", o.Repeat); w.WriteString("shmem_enabled", Guest.ReadText("/sys/kernel/mm/transparent_hugepage/shmem_enabled") ?? "?");
            w.WriteBoolean("sharer", o.Sharer);
        });
        var m0 = Guest.ReadMeminfo();
        out_.Meminfo("before", m0);
        int fd = Guest.CreateStore(size, o.PageSize, out byte* baseAddr, out var err);
        if (fd < 0) { out_.Say("setup failed: " + err); return 3; }
        _base = baseAddr;
        var agent = RecoveryAgent.Shared;
        var store = new KvStore(agent, baseAddr, size);
        long t0 = Guest.Now();
        store.Fill();
        out_.Say($"store: {store.Keys} keys of {KvStore.Slot} B in a {Output.Size(size)} hugetlb memfd ({o.Pages} x {Output.Size(o.PageSize)}), filled in {Output.Ms(Guest.Now() - t0)}");
        var m1 = Guest.ReadMeminfo();
        out_.Meminfo("filled", m1);

        var before = Snapshot((nint)baseAddr);
        var pr = RecoveryAgent.Protect(fd, (nint)baseAddr, size);
        out_.Line("protect", w =>
        {
            w.WriteBoolean("ok", pr.Ok);
            w.WriteStartArray("errors");
            foreach (var e in pr.Errors) { w.WriteStartObject(); w.WriteString("kind", e.Kind.ToString()); w.WriteString("message", e.Message); w.WriteEndObject(); }
            w.WriteEndArray();
            if (pr.Region is { } r) { w.WriteBoolean("shmem_thp", r.ShmemThp); w.WriteNumber("early_kill_prctl", agent.EarlyKillStatus); w.WriteNumber("agent_nice", agent.AgentNiceStatus); }
        });
        if (!pr.Ok) return Refused(pr, before, (nint)baseAddr);
        if (o.ExpectRefusal) { out_.Say("FAILED: Protect succeeded on a kernel where it should refuse"); return 1; }
        out_.Say($"protected: {Output.Size(size)} at 0x{(ulong)baseAddr:x}, replacements on tmpfs{(pr.Region!.ShmemThp ? " with 2 MiB THP" : " (4 KiB pages; shmem THP off)")}");
        agent.PageRecovered += ev => { lock (_events) _events.Add(ev); };

        Process? sharer = o.Sharer ? StartSharer(fd, size) : null;
        if (o.Sharer && sharer is null) return 3;
        var workers = new Workers(store, o.Threads);
        var plain = o.Sharer ? null : new PlainReader(baseAddr + o.TargetPage * o.PageSize + (o.Offset ^ PAGE_SIZE));
        var alloc = o.Allocator ? new Allocator() : null;
        var sampler = new MeminfoSampler();
        WaitOps(workers, 2000, 3000);

        int handled = 0;
        for (int rep = 0; rep < o.Repeat; rep++)
        {
            byte* addr = baseAddr + (o.TargetPage + rep) * o.PageSize + o.Offset;
            if (!Inject(addr, rep)) { Stop(workers, plain, alloc, sampler); return 3; }
            long opsAt = workers.TotalOps;
            if (!agent.WaitForRecoveries(++handled, TimeSpan.FromSeconds(600))) { out_.Say("FAILED: no recovery event within 600 s"); return 1; }
            var ev = agent.Recoveries[handled - 1];
            Report(ev, baseAddr);
            // a plain copy of the same size right after, under the same load: the side-by-side sample
            sampler.Pause();
            var one = BenchNow(agent, fd, baseAddr, pr.Region!.ShmemThp, agent.AgentNiceStatus == 0 ? -10 : 0, 1);
            sampler.Resume();
            _busy.Memcpy.AddRange(one.Memcpy); _busy.Pread.AddRange(one.Pread);
            // keep the store busy on the new mapping (and let workers meet the lost page) before the next error
            WaitOps(workers, opsAt + 2000, o.RunMs);
        }
        var ops = workers.TotalOps;
        Stop(workers, plain, alloc, null);
        var m2 = Guest.ReadMeminfo();
        out_.Meminfo("after", m2);
        out_.Line("threads", w =>
        {
            w.WriteNumber("worker_ops", ops); w.WriteNumber("worker_failed_ops", workers.Failed.Sum()); w.WriteNumber("lost_keys_seen", store.LostKeysSeen);
            w.WriteNumber("plain_reader_loops", plain?.Loops ?? 0); w.WriteNumber("allocations", alloc?.Allocations ?? 0);
            w.WriteNumber("gc_collections", alloc?.Collections ?? 0); w.WriteNumber("allocator_max_stall_ns", alloc?.MaxStallNs ?? 0);
            w.WriteNumber("peak_shmem_kB", sampler.PeakShmem); w.WriteNumber("min_memfree_kB", sampler.MinMemFree); w.WriteNumber("meminfo_samples", sampler.Samples);
        });
        Signals(agent);
        int rc = o.Sharer ? new SharerCheck(out_, store, agent, o).Finish(sharer!, baseAddr, _events) : Verify(store, agent, baseAddr, m1, m2, sampler, alloc, plain, ops);
        if (!o.Sharer) ReportBench(_busy, BenchNow(agent, fd, baseAddr, pr.Region.ShmemThp, 0, o.BenchReps), pr.Region.ShmemThp);
        Release(agent, fd, baseAddr, size, m0);
        return rc;
    }

    /// <summary>What the handler saw, by si_code and action (the early-kill notice to the agent's thread among them).</summary>
    private void Signals(RecoveryAgent agent)
    {
        var sigs = agent.Signals();
        var ao = sigs.FirstOrDefault(x => x.Code == BUS_MCEERR_AO);
        out_.Line("signals", w =>
        {
            w.WriteNumber("records", sigs.Count);
            w.WriteNumber("ao_records", sigs.Count(x => x.Code == BUS_MCEERR_AO)); w.WriteNumber("ao_lsb", ao.Code == BUS_MCEERR_AO ? ao.AddrLsb : 0);
            w.WriteString("ao_action", ao.Code == BUS_MCEERR_AO ? ao.Action : "");
            w.WriteStartObject("by_action");
            foreach (var g in sigs.GroupBy(x => $"{x.CodeName} lsb {x.AddrLsb} {x.Action}").OrderBy(g => g.Key, StringComparer.Ordinal)) w.WriteNumber(g.Key, g.Count());
            w.WriteEndObject();
        });
    }

    /// <summary>/proc/self/maps line of the store, thread count and SIGBUS disposition: what a refusal must leave alone.</summary>
    private static (string Maps, int Threads, ulong Handler) Snapshot(nint addr)
    {
        string line = File.ReadAllLines("/proc/self/maps").FirstOrDefault(l => l.StartsWith(((ulong)addr).ToString("x", CultureInfo.InvariantCulture) + "-", StringComparison.Ordinal)) ?? "";
        return (line, Directory.GetDirectories("/proc/self/task").Length, Sigaction.Current());
    }

    private int Refused(ProtectResult pr, (string Maps, int Threads, ulong Handler) before, nint addr)
    {
        var after = Snapshot(addr);
        foreach (var e in pr.Errors) out_.Say($"Protect refused ({e.Kind}): {e.Message}");
        bool same = before == after;
        out_.Line("refusal", w =>
        {
            w.WriteBoolean("nothing_changed", same); w.WriteString("maps_before", before.Maps); w.WriteString("maps_after", after.Maps);
            w.WriteNumber("threads_before", before.Threads); w.WriteNumber("threads_after", after.Threads);
            w.WriteBoolean("sigbus_handler_unchanged", before.Handler == after.Handler);
        });
        out_.Say(same ? $"nothing changed: the mapping is still '{after.Maps.Split(' ', 2)[0]} {after.Maps.Split(' ', 3).ElementAtOrDefault(1)}' hugetlb, no thread started ({after.Threads} threads), SIGBUS disposition unchanged"
            : $"FAILED: the refusal changed the process (maps '{before.Maps}' -> '{after.Maps}', threads {before.Threads} -> {after.Threads})");
        return o.ExpectRefusal && same ? 0 : 1;
    }

    private Process? StartSharer(int fd, long size)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!, ["sharer", $"/proc/{Environment.ProcessId}/fd/{fd}", size.ToString(CultureInfo.InvariantCulture)])
        { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        var p = Process.Start(psi);
        string? line = p?.StandardOutput.ReadLine();
        if (p is null || line != "ready") { out_.Say($"FAILED: the sharer process did not start ({line})"); return null; }
        out_.Say($"sharer: process {p.Id} maps the same memfd MAP_SHARED (as a vhost-user backend would)");
        return p;
    }

    private static void WaitOps(Workers w, long ops, int maxMs)
    {
        var sw = Stopwatch.StartNew();
        while (w.TotalOps < ops && sw.ElapsedMilliseconds < maxMs) Thread.Sleep(5);
    }

    private bool Inject(byte* addr, int rep)
    {
        long pfn = Guest.PfnOf(addr);
        long t = Guest.Now();
        string how;
        if (o.Inject == "madvise")
        {
            long ret = 0;
            int tid = 0;
            var th = new Thread(() => { tid = Guest.Tid(); ret = Guest.MadvHwpoison(addr); }) { Name = "injector" };
            th.Start();
            th.Join();
            how = $"madvise(MADV_HWPOISON) from thread {tid} returned {ret} after {Output.Ms(Guest.Now() - t)}";
        }
        else
        {
            if (pfn < 0) { out_.Say("FAILED: no pfn for the target address in /proc/self/pagemap"); return false; }
            string? e = Guest.CorruptPfn(pfn);
            how = $"echo 0x{pfn:x} > /sys/kernel/debug/hwpoison/corrupt-pfn: {(e is null ? "ok" : e)}";
        }
        var log = _kmsg.Drain();
        out_.Line("inject", w =>
        {
            w.WriteNumber("rep", rep); w.WriteNumber("addr", (long)addr); w.WriteNumber("pfn", pfn); w.WriteString("how", how); w.WriteNumber("t_ns", t);
            w.WriteStartArray("kmsg"); foreach (var l in log) w.WriteStringValue(l); w.WriteEndArray();
        });
        out_.Say($"injected a memory error at store+0x{(long)addr - (long)_base:x} (pfn 0x{pfn:x}) while {o.Threads} workers run: {how}");
        foreach (var l in log.Take(12)) out_.Say("  kernel: " + l);
        if (log.Count > 12) out_.Say($"  kernel: ... {log.Count - 12} more lines ({log.Skip(12).Count(l => l.StartsWith("MCE: Killing", StringComparison.Ordinal))} of them 'MCE: Killing': threads touching the page)");
        return true;
    }

    private void Report(PageRecovery ev, byte* baseAddr)
    {
        out_.Line("recovery", w =>
        {
            w.WriteString("outcome", ev.Outcome.ToString()); w.WriteNumber("page_offset", (long)ev.Address - (long)baseAddr); w.WriteNumber("size", ev.Size);
            w.WriteStartArray("lost_offsets"); foreach (var l in ev.LostOffsets) w.WriteNumberValue(l); w.WriteEndArray();
            w.WriteString("reason", ev.Reason); w.WriteString("first_code", Uapi.BusCodeName(ev.FirstCode)); w.WriteNumber("first_lsb", ev.FirstLsb);
            w.WriteNumber("first_addr_offset", (long)ev.FirstAddr - (long)baseAddr);
            w.WriteNumber("detected_ns", ev.Detected.Ticks * 100); w.WriteNumber("scan_ns", ev.Scanned.Ticks * 100); w.WriteNumber("fill_ns", ev.Filled.Ticks * 100);
            w.WriteNumber("swap_ns", ev.Swapped.Ticks * 100); w.WriteNumber("total_ns", ev.Total.Ticks * 100);
            w.WriteNumber("bytes_copied", ev.BytesCopied); w.WriteNumber("poison_calls", ev.PoisonCalls); w.WriteBoolean("shmem_thp", ev.ShmemThp);
            w.WriteNumber("other_pid", ev.OtherPid); w.WriteNumber("uninspected", ev.Uninspected);
        });
        string lost = string.Join(", ", ev.LostOffsets.Select(l => $"+0x{l:x}"));
        out_.Say(ev.Outcome == RecoveryOutcome.Recovered
            ? $"recovered huge page store+0x{(long)ev.Address - (long)baseAddr:x}: {ev.LostOffsets.Count} x 4 KiB lost ({lost} in the page), {Output.Size(ev.BytesCopied)} copied, "
              + $"first report {Uapi.BusCodeName(ev.FirstCode)} lsb {ev.FirstLsb}, recovery {Output.Ms(ev.Total.Ticks * 100)} "
              + $"(/proc check {Output.Ms(ev.Scanned.Ticks * 100)}, replacement + pread {Output.Ms(ev.Filled.Ticks * 100)}, UFFDIO_POISON + mremap {Output.Ms(ev.Swapped.Ticks * 100)})"
            : $"{ev.Outcome.ToString().ToLowerInvariant()} huge page store+0x{(long)ev.Address - (long)baseAddr:x}: {ev.Reason}");
    }

    private static void Stop(Workers w, PlainReader? p, Allocator? a, MeminfoSampler? s)
    {
        w.Stop(); p?.Stop(); a?.Stop(); s?.Stop();
    }

    private int Verify(KvStore store, RecoveryAgent agent, byte* baseAddr, Meminfo m1, Meminfo m2, MeminfoSampler sampler, Allocator? alloc, PlainReader? plain, long ops)
    {
        long tv = Guest.Now();
        var v = store.VerifyAll();
        long verifyNs = Guest.Now() - tv;
        var expected = Enumerable.Range(0, o.Repeat).Select(r => (o.TargetPage + r) * o.PageSize + (o.Offset & ~(PAGE_SIZE - 1))).ToList();
        var lostPages = v.LostPages;
        var sigs = agent.Signals();
        // later touches of a lost page: BUS_MCEERR_AR, si_addr_lsb 12, si_addr inside that page
        var touches = sigs.Where(s => s.Code == BUS_MCEERR_AR && s.AddrLsb == 12 && lostPages.Contains(((long)s.Addr - (long)baseAddr) & ~(PAGE_SIZE - 1))).ToList();
        var held = sigs.Where(s => s.Action == "retried").ToList();
        bool ok = _events.All(e => e.Outcome == RecoveryOutcome.Recovered) && _events.Count == o.Repeat && lostPages.SequenceEqual(expected)
            && v.Mismatches == 0 && v.UnexpectedReads == 0 && store.Corruptions == 0 && touches.Count > 0;
        out_.Line("verify", w =>
        {
            w.WriteBoolean("survived", true); w.WriteBoolean("ok", ok); w.WriteNumber("verified_bytes", v.VerifiedBytes); w.WriteNumber("lost_bytes", v.LostBytes);
            w.WriteNumber("mismatched_keys", v.Mismatches); w.WriteNumber("readable_lost_keys", v.UnexpectedReads); w.WriteNumber("corruptions_seen", store.Corruptions);
            w.WriteStartArray("lost_pages"); foreach (var p in lostPages) w.WriteNumberValue(p); w.WriteEndArray();
            w.WriteStartArray("expected_lost_pages"); foreach (var p in expected) w.WriteNumberValue(p); w.WriteEndArray();
            w.WriteNumber("lost_page_touches_ar_lsb12", touches.Count); w.WriteNumber("threads_held", held.Select(h => h.Tid).Distinct().Count());
            w.WriteNumber("max_held_ns", held.Count == 0 ? 0 : held.Max(h => h.ResumeNs - h.FaultNs)); w.WriteNumber("verify_ns", verifyNs);
            w.WriteNumber("signals", sigs.Count);
        });
        var first = _events.FirstOrDefault();
        long extraKb = sampler.PeakShmem - m1.Shmem;
        out_.Say($"survived: yes; {o.Threads} workers did {ops} gets/puts, a thread reading the page with ordinary loads did {plain?.Loops ?? 0} passes, "
            + (alloc is null ? "no allocating thread" : $"{alloc.Collections} garbage collection(s) ran (longest allocation stall {Output.Ms(alloc.MaxStallNs)}: a GC waits for held threads, it does not deadlock)"));
        out_.Say($"lost: {string.Join(", ", lostPages.Select(p => $"4 KiB at offset 0x{p:x}"))} (expected {string.Join(", ", expected.Select(p => $"0x{p:x}"))})"
            + (touches.Count > 0 ? $"; touching it later: SIGBUS {touches[0].CodeName} si_addr_lsb {touches[0].AddrLsb} at +0x{(long)touches[0].Addr - (long)baseAddr:x} ({touches.Count} touches)" : "; FAILED: no later touch was reported"));
        out_.Say($"every other byte verified: {Output.Size(v.VerifiedBytes)} ({v.VerifiedBytes} bytes) hold what was last written; mismatches {v.Mismatches}, corruptions seen by workers {store.Corruptions}");
        if (first is not null)
            out_.Say($"recovery time: {Output.Ms(first.Total.Ticks * 100)} from the first report to threads released ({held.Select(h => h.Tid).Distinct().Count()} threads held, longest {Output.Ms(held.Count == 0 ? 0 : held.Max(h => h.ResumeNs - h.FaultNs))})");
        out_.Say($"extra memory: Shmem +{extraKb} kB at peak (+{m2.Shmem - m1.Shmem} kB after), HugePages_Free {m1.HugeFree} -> {m2.HugeFree}, 1G free {m1.Huge1GFree} -> {m2.Huge1GFree}, "
            + $"HardwareCorrupted {m1.HardwareCorrupted} -> {m2.HardwareCorrupted} kB, PageTables {m1.PageTables} -> {m2.PageTables} kB");
        out_.Say(ok ? "RESULT: recovered" : "RESULT: FAILED");
        return ok ? 0 : 1;
    }

    /// <summary>Plain copies of one huge page: from a huge page that was never poisoned if there is one, else from the recovered page.</summary>
    private Bench.Samples BenchNow(RecoveryAgent agent, int fd, byte* baseAddr, bool thp, int nice, int reps)
    {
        int healthy = Enumerable.Range(0, o.Pages).Where(p => p < o.TargetPage || p >= o.TargetPage + o.Repeat).DefaultIfEmpty(-1).First();
        int src = healthy >= 0 ? healthy : o.TargetPage;
        return Bench.Run(agent, fd, baseAddr + src * o.PageSize, src * o.PageSize, healthy >= 0, o.PageSize, thp, o.Sharer ? 0 : reps, nice);
    }

    /// <summary>Recovery time next to plain copies of the same size in the same guest, under the same load and idle.</summary>
    private void ReportBench(Bench.Samples busy, Bench.Samples idle, bool thp)
    {
        var rec = _events.Where(e => e.Outcome == RecoveryOutcome.Recovered).Select(e => e.Total.Ticks * 100).ToList();
        var fill = _events.Where(e => e.Outcome == RecoveryOutcome.Recovered).Select(e => e.Filled.Ticks * 100).ToList();
        out_.Line("bench", w =>
        {
            w.WriteNumber("size", o.PageSize); w.WriteBoolean("shmem_thp", thp);
            void Arr(string name, IEnumerable<long> xs) { w.WriteStartArray(name); foreach (var x in xs) w.WriteNumberValue(x); w.WriteEndArray(); }
            Arr("recovery_ns", rec); Arr("recovery_fill_ns", fill);
            Arr("memcpy_busy_ns", busy.Memcpy); Arr("pread_busy_ns", busy.Pread); Arr("memcpy_idle_ns", idle.Memcpy); Arr("pread_idle_ns", idle.Pread);
        });
        if (rec.Count == 0 || busy.Memcpy.Count == 0) return;
        long r = Bench.Median(rec), mb = Bench.Median(busy.Memcpy), mi = Bench.Median(idle.Memcpy);
        string pb = busy.Pread.Count > 0 ? $", pread {Output.Ms(Bench.Median(busy.Pread))}" : "", pi = idle.Pread.Count > 0 ? $", pread {Output.Ms(Bench.Median(idle.Pread))}" : "";
        out_.Say($"benchmark ({Output.Size(o.PageSize)}, this guest): recovery {Output.Ms(r)} (median of {rec.Count}); plain copy into fresh tmpfs under the same load: "
            + $"memcpy {Output.Ms(mb)}{pb} (median of {busy.Memcpy.Count}, each right after a recovery); idle: memcpy {Output.Ms(mi)}{pi}; "
            + $"recovery = {(double)r / mb:0.00}x the plain memcpy under load{(busy.Pread.Count > 0 ? $", {(double)r / Bench.Median(busy.Pread):0.00}x the pread" : "")}");
    }

    /// <summary>Unmaps everything (store, replacements) and closes every fd: what stays is what the error cost the pool.</summary>
    private void Release(RecoveryAgent agent, int fd, byte* baseAddr, long size, Meminfo m0)
    {
        var fds = agent.Recoveries.Where(e => e.ReplacementFd >= 0).Select(e => e.ReplacementFd).ToList();
        agent.Dispose();
        LinuxKernel.Instance.Syscall(__NR_munmap, (long)baseAddr, size);
        LinuxKernel.Instance.Syscall(__NR_close, fd);
        foreach (var f in fds) LinuxKernel.Instance.Syscall(__NR_close, f);
        var m3 = Guest.ReadMeminfo();
        out_.Meminfo("released", m3);
        bool giga = o.PageSize == 1L << 30;
        long lostPool = giga ? m0.Huge1GFree - m3.Huge1GFree : m0.HugeFree - m3.HugeFree;
        out_.Say($"after releasing everything: {lostPool} huge page(s) not returned to the pool ({(giga ? $"1G free {m0.Huge1GFree} -> {m3.Huge1GFree}" : $"HugePages_Free {m0.HugeFree} -> {m3.HugeFree}")}, "
            + $"total {(giga ? $"{m0.Huge1GTotal} -> {m3.Huge1GTotal}" : $"{m0.HugeTotal} -> {m3.HugeTotal}")}), Shmem {m0.Shmem} -> {m3.Shmem} kB, HardwareCorrupted {m3.HardwareCorrupted} kB");
    }
}

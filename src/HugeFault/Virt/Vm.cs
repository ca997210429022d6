using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault.Virt;

/// <summary>The guest OS model's knobs.</summary>
public sealed record GuestConfig
{
    /// <summary>Fraction of guest pages holding guest-kernel memory (slab, page tables, stacks): an MCE there panics the guest.</summary>
    public double KernelFraction { get; init; } = 0.05;
    /// <summary>
    /// A what-if budget: more than this many MCEs within <see cref="MceWindowNs"/> panic the guest. Null (the default): no
    /// budget, because Linux has none. Its only count of machine checks is per kernel entry of one task
    /// (arch/x86/kernel/cpu/mce/core.c queue_task_work(): more than 10 consecutive MCEs before the task returns to user
    /// space, or two on different user pages, mce_panic(); commit 81065b35e248 "x86/mce: Avoid infinite loop for copy from
    /// user recovery", v5.14), and QEMU resets the guest only when it injects an MCE while the previous one is still being
    /// handled (target/i386/helper.c do_inject_x86_mce(): MCG_STATUS_MCIP set, "Previous MCE still in progress, raising
    /// triple fault") — a nested machine check, not a rate. Many MCEs on distinct pages, one after the other, are each
    /// handled by the guest's memory_failure().
    /// </summary>
    public int? MaxMces { get; init; }
    public long MceWindowNs { get; init; } = 60_000_000_000;
    /// <summary>AMD guest: QEMU does not inject action-optional MCEs (it warns and drops them).</summary>
    public bool Amd { get; init; }
    /// <summary>The guest accepts that the host may rewrite/zero poisoned lines (repair, copy-around with zero).</summary>
    public bool Enlightened { get; init; }
}

/// <summary>One EPT (second-level) leaf: guest-physical [Gpa, Gpa+Size) → host pfn.</summary>
public readonly record struct EptEntry(ulong Gpa, ulong Size, ulong HostPfn);

/// <summary>
/// A KVM virtual machine on a modelled host: a VMM process (QEMU-like main thread, early-kill, plus one
/// thread per vCPU) whose guest RAM is a hugetlb memfd mapped MAP_SHARED at one memslot, an EPT built on
/// demand whose entry size follows the host mapping, kept coherent by the host's MMU notifier, QEMU's
/// SIGBUS handling (poisoned-page list, MCE injection, reset, migration refusal) and a guest OS model.
/// </summary>
public sealed class Vm
{
    private readonly Dictionary<ulong, EptEntry> _ept = new();   // keyed by Gpa (aligned to Size)
    private readonly Queue<long> _mceTimes = new();

    public Vm(Kernel host, string name, ulong ramBytes, ulong pageSize, int vcpus, GuestConfig guest, Version qemuVersion)
    {
        Host = host; Name = name; RamBytes = ramBytes; PageSize = pageSize; Guest = guest; QemuVersion = qemuVersion;
        Vmm = host.Spawn(name);
        Vmm.MceKill = MceKillPolicy.Early; // qemu_init_sigbus(): prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY)
        for (int i = 0; i < vcpus; i++)
        {
            var v = host.CloneThread(Vmm, $"{name}/vcpu{i}");
            v.MceKill = MceKillPolicy.Late; // only the main thread asks for early kill
            Vcpus.Add(v);
        }
        uint flags = Memfd.MFD_HUGETLB | (pageSize == Units.GiB ? Memfd.MFD_HUGE_1GB : Memfd.MFD_HUGE_2MB);
        var fd = host.MemfdCreate(Vmm, name + ".ram", pageSize == Units.PAGE_SIZE ? 0 : flags);
        if (fd.Failed) throw new InvalidOperationException($"memfd_create failed: {Errno.Name(fd.Errno)}");
        RamFd = (int)fd.Ret;
        Ram = Vmm.Fds[RamFd].Inode;
        Ram.GuestMemory = true;
        host.Ftruncate(Vmm, RamFd, (long)ramBytes);
        var m = host.Mmap(Vmm, ramBytes, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, RamFd, 0, name + ".ram");
        if (m.Failed) throw new InvalidOperationException($"guest RAM mmap failed: {Errno.Name(m.Errno)} (not enough huge pages?)");
        RamHva = (ulong)m.Ret;
        host.MmuNotifier += OnInvalidate;
        host.SignalDelivered += OnSignal;
    }

    public Kernel Host { get; }
    public string Name { get; }
    public ulong RamBytes { get; }
    public ulong PageSize { get; }
    public GuestConfig Guest { get; }
    public Version QemuVersion { get; }
    public TaskStruct Vmm { get; }
    public List<TaskStruct> Vcpus { get; } = new();
    public int RamFd { get; }
    public Inode Ram { get; }
    /// <summary>The memslot: GPA 0 .. RamBytes at this host virtual address.</summary>
    public ulong RamHva { get; }

    // QEMU state
    /// <summary>hwpoison_page_list: ram_addr of every poisoned page QEMU was told about (deduplicated).</summary>
    public SortedSet<ulong> HwpoisonList { get; } = new();
    public bool QemuExited { get; private set; }
    private readonly HashSet<ulong> _largePagesReported = new();

    // guest OS state
    public HashSet<ulong> OfflinedGfns { get; } = new();
    public int Mces { get; private set; }
    public int GuestProcessesKilled { get; private set; }
    public string? PanicReason { get; private set; }
    public bool Alive => !QemuExited && PanicReason is null && Vmm.Alive;

    public IReadOnlyCollection<EptEntry> Ept => _ept.Values;

    // ---- EPT and the MMU notifier ----

    /// <summary>kvm_mmu_notifier_invalidate_range_start(): zap EPT entries overlapping the host range.</summary>
    private void OnInvalidate(MmStruct mm, ulong start, ulong size)
    {
        if (mm != Vmm.Mm) return;
        ulong end = start + size;
        if (end <= RamHva || start >= RamHva + RamBytes) return;
        ulong gs = Math.Max(start, RamHva) - RamHva, ge = Math.Min(end, RamHva + RamBytes) - RamHva;
        foreach (var e in _ept.Values.Where(e => e.Gpa < ge && e.Gpa + e.Size > gs).ToList())
        {
            _ept.Remove(e.Gpa);
            Host.Stats.EptZaps++;
        }
    }

    private EptEntry? EptLookup(ulong gpa)
    {
        foreach (var sz in new[] { Units.GiB, Units.PMD_SIZE, Units.PAGE_SIZE })
            if (_ept.TryGetValue(Units.AlignDown(gpa, sz), out var e) && e.Size == sz) return e;
        return null;
    }

    /// <summary>
    /// A guest access of length bytes at gpa by vCPU i: through the EPT; an EPT violation resolves the hva
    /// on the host (GUP, which faults) and installs an EPT entry as large as the host mapping allows.
    /// Returns how many bytes were accessed and how it ended.
    /// </summary>
    public AccessResult GuestAccess(int vcpu, ulong gpa, ulong length, bool write, ulong seed = 0, long patternOffset = 0, ContentCheck? check = null)
    {
        var t = Vcpus[vcpu];
        ulong cur = gpa, end = gpa + length;
        int guard = 0;
        while (cur < end)
        {
            if (!Alive) return new(cur - gpa, "VM dead");
            if (cur >= RamBytes) return new(cur - gpa, "outside guest RAM");
            var e = EptLookup(cur);
            if (e is null)
            {
                if (++guard > 16) throw new InvalidOperationException("EPT fault loop");
                // EPT violation -> kvm_faultin_pfn() -> GUP of the hva
                ulong hva = RamHva + cur;
                int before = t.SignalsReceived;
                var (pfn, shift, err) = Host.KvmHvaToPfn(t, hva);
                if (err == FaultKind.Hwpoison)
                {
                    // kvm_send_hwpoison_signal(): BUS_MCEERR_AR, 4 KiB-aligned hva, lsb PAGE_SHIFT on x86
                    Host.KvmSendHwpoisonSignal(t, hva);
                    return new(cur - gpa, "SIGBUS BUS_MCEERR_AR (kvm_send_hwpoison_signal)");
                }
                if (err != FaultKind.Mapped) return new(cur - gpa, $"EPT fault failed: {err}");
                ulong size = 1UL << shift;
                ulong eg = Units.AlignDown(cur, size);
                if (eg + size > RamBytes) size = Units.PAGE_SIZE;
                eg = Units.AlignDown(cur, size);
                ulong basePfn = pfn - ((cur - eg) >> Units.PAGE_SHIFT);
                _ept[eg] = new EptEntry(eg, size, basePfn);
                continue;
            }
            guard = 0;
            var ee = e.Value;
            ulong n = Math.Min(end, ee.Gpa + ee.Size) - cur;
            ulong pa = (ee.HostPfn << Units.PAGE_SHIFT) + (cur - ee.Gpa);
            var bad = Host.FirstBadByte(pa, n);
            ulong ok = bad is { } b ? b - pa : n;
            if (ok > 0) Host.TouchBytes(pa, ok, write, seed, patternOffset + (long)(cur - gpa), check, cur - gpa);
            cur += ok;
            if (bad is { } badPa)
            {
                // consumed in guest mode: the host's #MC handler runs memory_failure(MF_ACTION_REQUIRED) for the vCPU task
                int before = t.SignalsReceived;
                Host.KAct($"machine check in guest mode: {Name} vcpu{vcpu} consumed poisoned line {Units.Hex(badPa)} (gpa {Units.Hex(cur)})");
                Host.MachineCheck(t, badPa);
                if (t.SignalsReceived != before || !Alive) return new(cur - gpa, "SIGBUS BUS_MCEERR_AR (machine check in guest mode)");
                if (++guard > 16) throw new InvalidOperationException("machine-check loop");
            }
        }
        return new(length, "ok");
    }

    // ---- QEMU's SIGBUS handling (target/i386/kvm/kvm.c) ----

    private void OnSignal(TaskStruct t, int signo, int code, ulong addr, int lsb)
    {
        if (t.Tgid != Vmm.Tgid || signo != Sig.SIGBUS || QemuExited) return;
        if (code is not (Sig.BUS_MCEERR_AR or Sig.BUS_MCEERR_AO)) { QemuExit($"unexpected SIGBUS {Sig.CodeName(signo, code)}"); return; }
        bool mainThread = t == Vmm;
        if (addr >= RamHva && addr < RamHva + RamBytes)
        {
            ulong ramAddr = Units.AlignDown(addr - RamHva, Units.PAGE_SIZE);
            ulong gpa = ramAddr; // one memslot at GPA 0
            HwpoisonList.Add(ramAddr);    // kvm_hwpoison_page_add()
            if (PageSize > Units.PAGE_SIZE && QemuVersion >= new Version(10, 0) && _largePagesReported.Add(Units.AlignDown(ramAddr, PageSize)))
                Host.Log($"qemu {Name}: Memory Error on large page from {Name}.ram:{Units.Hex(Units.AlignDown(ramAddr, PageSize))}+0 +{PageSize} ({Units.Size(PageSize)})");
            if (code == Sig.BUS_MCEERR_AO && Guest.Amd)
            {
                Host.Log($"qemu {Name}: Hardware memory error for memory used by the guest: AO ignored on AMD guest");
                return;
            }
            Host.Log($"qemu {Name}: Guest MCE Memory Error at QEMU addr {Units.Hex(addr)} and GUEST addr {Units.Hex(gpa)} of type {(code == Sig.BUS_MCEERR_AR ? "BUS_MCEERR_AR" : "BUS_MCEERR_AO")} injected");
            GuestMce(gpa, code == Sig.BUS_MCEERR_AR);
            return;
        }
        if (code == Sig.BUS_MCEERR_AR || !mainThread) QemuExit($"Hardware memory error for memory used by QEMU itself instead of guest system (addr {Units.Hex(addr)})");
    }

    private void QemuExit(string why)
    {
        QemuExited = true;
        Host.Log($"qemu {Name}: {why}; exiting");
        Host.DoExit(Vmm, "qemu exit(1): " + why);
        foreach (var v in Vcpus) Host.DoExit(v, "qemu exit");
    }

    // ---- the guest OS ----

    /// <summary>
    /// The guest's machine-check handler (do_machine_check() → memory_failure() in the guest): offline the 4 KiB page and
    /// kill its user, or panic. A page holding guest-kernel data is "unhandlable" to the guest's memory_failure()
    /// (identify_page_state() → MF_IGNORED): it stays in use with PG_hwpoison set. Action required means the guest kernel
    /// consumed it (mce_panic(), no fixup in kernel context); action optional means it will consume it at its next read of
    /// that memory, which the model does not wait for: either way the guest panics.
    /// </summary>
    private void GuestMce(ulong gpa, bool actionRequired)
    {
        if (PanicReason is not null) return;
        long now = Host.NowNs;
        Mces++;
        ulong gfn = gpa >> Units.PAGE_SHIFT;
        if (Guest.MaxMces is int budget)
        {
            _mceTimes.Enqueue(now);
            while (_mceTimes.Count > 0 && _mceTimes.Peek() < now - Guest.MceWindowNs) _mceTimes.Dequeue();
            if (_mceTimes.Count > budget) { GuestPanic($"{_mceTimes.Count} machine checks within {Guest.MceWindowNs / 1e9:0.#} s (what-if budget max_mces = {budget})"); return; }
        }
        if (IsGuestKernelPage(gfn))
        {
            GuestPanic(actionRequired
                ? $"MCE in guest kernel memory at gpa {Units.Hex(gpa)}"
                : $"MCE in guest kernel memory at gpa {Units.Hex(gpa)} (unhandlable page: the guest kernel reads it next)");
            return;
        }
        if (actionRequired) GuestProcessesKilled++;
        OfflinedGfns.Add(gfn);
        Host.Act($"guest {Name}: memory_failure on gfn {Units.Hex(gfn)}: page offlined" + (actionRequired ? ", guest process killed" : ""));
    }

    private void GuestPanic(string why)
    {
        PanicReason = why;
        Host.Log($"guest {Name}: Kernel panic - not syncing: {why}");
    }

    /// <summary>Deterministic stand-in for what a guest page holds: a hash of the gfn against the kernel fraction.</summary>
    public bool IsGuestKernelPage(ulong gfn)
    {
        ulong x = gfn * 0x9E3779B97F4A7C15UL; x ^= x >> 29; x *= 0xBF58476D1CE4E5B9UL; x ^= x >> 32;
        return (x % 1_000_000) < (ulong)(Guest.KernelFraction * 1_000_000);
    }

    /// <summary>
    /// System reset (qemu_system_reset → kvm_unpoison_all → qemu_ram_remap): since QEMU 10.0 each poisoned
    /// page is discarded at the RAMBlock page size (fallocate PUNCH_HOLE of the whole huge page); before,
    /// only 4 KiB was remapped and the poisoned huge page stayed. The guest reboots with an empty state.
    /// </summary>
    public void SystemReset()
    {
        if (QemuExited) return;
        foreach (var ramAddr in HwpoisonList.ToList())
        {
            if (QemuVersion >= new Version(10, 0))
            {
                ulong off = Units.AlignDown(ramAddr, PageSize);
                var r = Host.Fallocate(Vmm, RamFd, Memfd.FALLOC_FL_PUNCH_HOLE | Memfd.FALLOC_FL_KEEP_SIZE, off, PageSize);
                Host.Log($"qemu {Name}: reset: discarded {Units.Size(PageSize)} at ram_addr {Units.Hex(off)}" + (r.Failed ? $" FAILED ({Errno.Name(r.Errno)})" : ""));
                if (r.Failed) { QemuExit("ram_block_discard_range failed on reset"); return; }
            }
            else Host.Log($"qemu {Name}: reset: remapped 4K at ram_addr {Units.Hex(ramAddr)} (the poisoned huge page stays)");
        }
        HwpoisonList.Clear();
        _ept.Clear();
        OfflinedGfns.Clear(); _mceTimes.Clear(); Mces = 0; GuestProcessesKilled = 0; PanicReason = null;
        Host.Act($"vm {Name}: system reset");
    }

    /// <summary>Guest RAM the guest can no longer use: 4 KiB pages it offlined plus pages the host cannot map for it now.</summary>
    public ulong GuestMemoryLost()
    {
        ulong lost = 0;
        for (ulong g = 0; g < RamBytes; )
        {
            var r = Host.Walk(Vmm.Mm, RamHva + g);
            var e = r.Entry;
            ulong step = Math.Max(Units.PAGE_SIZE, Math.Min(r.Size, RamBytes - g));
            if (e.IsHwpoison || e.IsPoisonMarker) lost += step;
            // a range not faulted in yet faults on the guest RAM file's folio, if the VMA there still maps that file
            // (userspace-migrate remaps a huge page of guest RAM to tmpfs)
            else if (e.IsNone && Vmm.Mm.FindVma(RamHva + g) is { } vma && vma.File == Ram && Ram.PageCache.TryGetValue(g >> Ram.FolioShift, out var f)
                     && f.IsHwpoison && !Host.Policy.AllowFaultOnPoisonedFolio(Host, vma, f, RamHva + g))
                lost += step;
            else if (e.Present && Host.Phys.FolioOf(e.Pfn) is { IsHwpoison: true } pf)
                lost += (ulong)pf.RawHwp.Count(raw => raw >= e.Pfn && raw < e.Pfn + (step >> Units.PAGE_SHIFT)) * Units.PAGE_SIZE;
            g = Units.AlignDown(g, step) + step;
        }
        ulong offl = (ulong)OfflinedGfns.Count * Units.PAGE_SIZE;
        return Math.Max(lost, offl);
    }
}

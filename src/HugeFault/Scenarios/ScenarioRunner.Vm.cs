using HugeFault.Mm;
using HugeFault.Virt;

namespace HugeFault.Scenarios;

// Hardware errors, pfn lookups, KVM guests and live migration of a scenario, each from its typed record.
public sealed partial class ScenarioRunner
{
    /// <summary>The pfn of a step: a saved variable, a literal, or the page mapped at name+offset.</summary>
    private ulong PfnOf(Step s, PfnArg? pfn, MapRange? at)
    {
        if (pfn is { } p) return p.Var is { } v ? _vars.GetValueOrDefault(v) : p.Value; // 0 when pfn_of could not read it, as pagemap gives
        var (va, _) = Map(at!.Map);
        ulong a = va + at.Offset.Value;
        var r = _k.Walk(Proc(s).Mm, a);
        return r.Entry.Pfn + ((a - r.Va) >> Units.PAGE_SHIFT);
    }

    private string CorruptPfn(Step s, ulong pfn)
    {
        _k.Log($"Injecting memory failure at pfn {Units.Hex(pfn)}");
        int r = _k.MemoryFailure(pfn, MfFlags.MF_SW_SIMULATED);
        return Sys(s, "write", $"/sys/kernel/debug/hwpoison/corrupt-pfn, {Units.Hex(pfn)}", r < 0 ? SysResult.Err(-r) : SysResult.Ok());
    }

    private string UnpoisonPfn(Step s, ulong pfn)
    {
        int r = _k.UnpoisonMemory(pfn);
        return Sys(s, "write", $"/sys/kernel/debug/hwpoison/unpoison-pfn, {Units.Hex(pfn)}", r < 0 ? SysResult.Err(-r) : SysResult.Ok());
    }

    private string PfnOfStep(Step s, PfnOfOp o)
    {
        var (va, _) = Map(o.At.Map);
        ulong a = va + o.At.Offset.Value;
        var r = _k.Walk(Proc(s).Mm, a);
        var e = r.Entry;
        ulong pfn = e.Present ? e.Pfn + ((a - r.Va) >> Units.PAGE_SHIFT) : 0;
        _vars[o.Save] = pfn;
        return Sys(s, "pread", $"/proc/self/pagemap @ {Addr(o.At)} -> ${o.Save} = {Units.Hex(pfn)}", e.Present ? SysResult.Ok((long)pfn) : SysResult.Err(Errno.ENOENT));
    }

    private string HwError(Step s, HwErrorOp o)
    {
        ulong pa;
        string where;
        if (o.Phys is { } phys) { pa = phys.Value; where = Units.Hex(pa); }
        else if (o.Pfn is { } pfn) { pa = (PfnOf(s, pfn, null) << Units.PAGE_SHIFT) + o.Offset.Value; where = Units.Hex(pa); }
        else if (o.Map is { } map)
        {
            var t = Proc(s); var (va, _) = Map(map);
            ulong a = va + o.Offset.Value;
            var r = _k.Walk(t.Mm, a);
            if (!r.Entry.Present && !r.Entry.IsHwpoison) return Sys(s, "hw_error", $"{Addr(map, o.Offset)}: not mapped (fault it in first)", SysResult.Err(Errno.EFAULT));
            pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (a - r.Va);
            where = $"{Addr(map, o.Offset)} (pa {Units.Hex(pa)})";
        }
        else
        {
            var t = Proc(s); int fd = Fd(s, o.Fd!);
            if (!t.Fds.TryGetValue(fd, out var of)) return Sys(s, "hw_error", $"{o.Fd}: not an open file", SysResult.Err(Errno.EBADF));
            var inode = of.Inode;
            ulong off = o.Offset.Value;
            if (!inode.PageCache.TryGetValue(off / inode.FolioSize, out var f)) return Sys(s, "hw_error", "file offset has no page", SysResult.Err(Errno.ENOENT));
            pa = f.PhysAddr + off % inode.FolioSize;
            where = $"{o.Fd}@{Units.Hex(off)} (pa {Units.Hex(pa)})";
        }
        pa = Units.AlignDown(pa, Units.CACHELINE);
        _k.Phys.PoisonLine(pa, o.Kind);
        string kind = o.Kind.ToString().ToLowerInvariant();
        _k.KAct($"hardware error: {kind} poison in cacheline {Units.Hex(pa)}, {o.Detect}");
        if (o.Detect == "scrub")
        {
            // patrol scrub finds it: GHES/CMCI -> memory_failure_queue() without MF_ACTION_REQUIRED
            _k.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
        }
        else if (o.Detect == "consume" && o.Map is { } cmap)
        {
            var t = Proc(s); var (va, _) = Map(cmap);
            ulong a = Units.AlignDown(va + o.Offset.Value, Units.CACHELINE);
            var r = _k.Access(t, a, Units.CACHELINE, write: false);
            _lastAccess = r;
            _k.Emit(new AccessEvent(_k.NowNs, t.Comm, "load", _k.Sym(t, a), Units.CACHELINE, r.Done, r.Outcome));
        }
        return $"hw_error {kind} at {where}, {o.Detect}";
    }

    private string KvmGuestAccess(Step s, KvmGuestAccessOp o)
    {
        var t = Proc(s); var (va, _) = Map(o.At.Map);
        ulong hva = va + o.At.Offset.Value, len = o.At.Length?.Value ?? 1;
        var r = _k.KvmGuestAccess(t, hva, len);
        _lastAccess = r;
        _k.Emit(new AccessEvent(_k.NowNs, t.Comm, "guest access", _k.Sym(t, hva), len, r.Done, r.Outcome));
        return $"guest access at {Addr(o.At)}: {r.Outcome}";
    }

    private string VmCreate(Step s, VmCreateOp o)
    {
        Vm vm;
        try { vm = new Vm(_k, o.Name, o.Ram, o.PageSize, o.Vcpus, o.Guest, o.Qemu); }
        catch (InvalidOperationException ex) { _lastErrno = Errno.ENOMEM; _lastRet = -1; return "vm_create failed: " + ex.Message; }
        _vms[o.Name] = vm;
        _procs[o.Name] = vm.Vmm;
        for (int i = 0; i < o.Vcpus; i++) _procs[$"{o.Name}/vcpu{i}"] = vm.Vcpus[i];
        _maps[o.Name + ".ram"] = (vm.RamHva, o.Ram);
        _fds[(o.Name, o.Name + ".ram")] = vm.RamFd;
        if (o.Populate is { } pp) _k.Access(vm.Vmm, vm.RamHva, o.Ram, write: true, pp.Seed, 0);
        _k.Act($"vm {o.Name}: {Units.Size(o.Ram)} guest RAM on {Units.Size(o.PageSize)} hugetlb pages, {o.Vcpus} vCPU(s), QEMU {o.Qemu}");
        return $"vm_create {o.Name}: {Units.Size(o.Ram)} RAM at {Units.Hex(vm.RamHva)}";
    }

    private string GuestAccess(Step s, GuestAccessOp o)
    {
        var vm = _vms[o.Vm];
        ulong len = o.Length ?? 8;
        var check = o.Write ? null : ExpectedCheck(s, (long)o.Gpa);
        var r = vm.GuestAccess(o.Vcpu, o.Gpa, len, o.Write, o.Pattern.Seed, o.Pattern.At ?? (long)o.Gpa, check);
        _lastAccess = r; _lastCheck = check;
        _k.Emit(new AccessEvent(_k.NowNs, vm.Vcpus[o.Vcpu].Comm, o.Write ? "guest store" : "guest load", "gpa " + Units.Hex(o.Gpa), len, r.Done, r.Outcome));
        return $"guest {(o.Write ? "store" : "load")} {Units.Size(len)} at gpa {Units.Hex(o.Gpa)}: {r.Outcome}";
    }

    private string GuestTouch(GuestTouchOp o)
    {
        var vm = _vms[o.Vm];
        ulong stride = o.Pages > 0 ? Math.Max(Units.PAGE_SIZE, Units.AlignDown(o.Length / (ulong)o.Pages, Units.PAGE_SIZE)) : o.Length;
        int done = 0, sigbus = 0;
        for (int i = 0; i < o.Pages && vm.Alive; i++)
        {
            ulong a = o.Gpa + (ulong)i * stride + 0x80;
            if (a >= o.Gpa + o.Length) break;
            int before = vm.Vcpus[o.Vcpu].SignalsReceived;
            vm.GuestAccess(o.Vcpu, a, 8, write: false);
            if (vm.Vcpus[o.Vcpu].SignalsReceived != before) sigbus++;
            done++;
            _k.Advance((long)(1e9 / o.Rate));
        }
        string end = vm.Alive ? "VM alive" : vm.PanicReason is { } pr ? "guest panicked: " + pr : "VMM exited";
        _lastAccess = new AccessResult((ulong)done, end);
        return $"guest touched {done} pages, {sigbus} SIGBUS, {vm.Mces} MCEs in all; {end}";
    }

    private string VmReset(VmResetOp o)
    {
        var vm = _vms[o.Vm];
        vm.SystemReset();
        return $"vm_reset {vm.Name}";
    }

    private string Migrate(MigrateOp o)
    {
        var vm = _vms[o.Vm];
        var cfg = o.Config;
        var r = LiveMigration.Migrate(vm, cfg);
        _migrations.Add(r); _lastMigration = r;
        if (r.Refused) { _lastRet = -1; _lastErrno = Errno.EBUSY; return "migrate refused: " + r.Reason; }
        return $"migrate {cfg.Mode.ToString().ToLowerInvariant()}: {Units.Size((ulong)r.BytesMoved)} moved in {r.TotalNs / 1e9:0.###} s, downtime {r.DowntimeNs / 1e6:0.###} ms, "
            + (cfg.Mode == MigrationMode.Postcopy ? $"{r.Faults} faults of {Units.Size(r.Granule)}, stall p50 {r.StallP50Ns / 1e3:0.#} us p99 {r.StallP99Ns / 1e3:0.#} us max {r.StallMaxNs / 1e3:0.#} us, " : "")
            + $"fake-poisoned {Units.Size(r.FakePoisonedBytes)} ({r.FakePoisonBacking}); guest-visible poison {r.PoisonSetRelation}";
    }
}

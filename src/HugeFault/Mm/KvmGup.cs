using HugeFault.Mm;

namespace HugeFault;

// The host side of KVM (virt/kvm/kvm_main.c hva_to_pfn, arch/x86/kvm/mmu/mmu.c kvm_handle_error_pfn/kvm_send_hwpoison_signal).
public sealed partial class Kernel
{
    /// <summary>hva_to_pfn(): GUP with FOLL_HWPOISON; returns the pfn at hva and the shift of the host leaf mapping it.</summary>
    public (ulong Pfn, int Shift, FaultKind Err) KvmHvaToPfn(TaskStruct vcpu, ulong hva)
    {
        for (int attempt = 0; attempt < 4; attempt++)
        {
            var vma = vcpu.Mm.FindVma(hva);
            if (vma is null) return (0, 0, FaultKind.Segv);
            var r = Walk(vcpu.Mm, hva);
            var e = r.Entry;
            if (e.Present && (r.Level == PtLevel.Pte || e.Huge)) return (e.Pfn + ((hva - r.Va) >> Units.PAGE_SHIFT), r.Shift, FaultKind.Mapped);
            var fr = HandleMmFault(vcpu, vma, hva, write: false, fromGup: true);
            if (fr.Kind != FaultKind.Mapped) return (0, 0, fr.Kind);
        }
        return (0, 0, FaultKind.Oom);
    }

    /// <summary>kvm_send_hwpoison_signal(): x86 reports PAGE_SHIFT whatever backs the hva.</summary>
    public void KvmSendHwpoisonSignal(TaskStruct vcpu, ulong hva) =>
        ReportMceErr(vcpu, Sig.BUS_MCEERR_AR, Units.AlignDown(hva, Units.PAGE_SIZE), Units.PAGE_SHIFT, forced: true);

    /// <summary>A machine check consumed by task t at physical address pa (do_machine_check → memory_failure(MF_ACTION_REQUIRED)).</summary>
    public int MachineCheck(TaskStruct t, ulong pa) => MemoryFailureIn(t, pa >> Units.PAGE_SHIFT, MfFlags.MF_ACTION_REQUIRED, pa);

    /// <summary>memory_failure() run in t's context (current = t), as from a #MC handler's task work or madvise.</summary>
    internal int MemoryFailureIn(TaskStruct t, ulong pfn, MfFlags flags, ulong? pa = null)
    {
        var prev = Current; Current = t;
        try { return MemoryFailure(pfn, flags, pa); }
        finally { Current = prev; }
    }

    /// <summary>
    /// A guest access to memory backed by hva (the host side of case 24): KVM's GUP of the hva fails with
    /// -EHWPOISON on a poisoned page and x86 KVM sends BUS_MCEERR_AR with the 4 KiB-aligned hva and lsb 12;
    /// a poisoned line consumed in guest mode goes through memory_failure() in the vCPU's context.
    /// </summary>
    public AccessResult KvmGuestAccess(TaskStruct vcpu, ulong hva, ulong length)
    {
        ulong cur = hva, end = hva + length;
        while (cur < end)
        {
            var (pfn, shift, err) = KvmHvaToPfn(vcpu, cur);
            if (err == FaultKind.Hwpoison) { KvmSendHwpoisonSignal(vcpu, cur); return new(cur - hva, "SIGBUS BUS_MCEERR_AR (kvm_send_hwpoison_signal)"); }
            if (err != FaultKind.Mapped) return new(cur - hva, $"KVM: fault {err}");
            ulong leafEnd = Units.AlignDown(cur, 1UL << shift) + (1UL << shift);
            ulong n = Math.Min(end, leafEnd) - cur;
            ulong pa = pfn << Units.PAGE_SHIFT | (cur & (Units.PAGE_SIZE - 1));
            if (FirstBadByte(pa, n) is { } bad)
            {
                int before = vcpu.SignalsReceived;
                MachineCheck(vcpu, bad);
                if (vcpu.SignalsReceived != before) return new(bad - pa + cur - hva, "SIGBUS BUS_MCEERR_AR (machine check in guest mode)");
                continue;
            }
            cur += n;
        }
        return new(length, "ok");
    }
}

using HugeFault.Mm;

namespace HugeFault;

// The host side of a KVM guest access (virt/kvm/kvm_main.c hva_to_pfn, arch/x86/kvm/mmu/mmu.c kvm_handle_error_pfn).
public sealed partial class Kernel
{
    /// <summary>
    /// A guest access to memory backed by hva: KVM resolves the hva with GUP (FOLL_HWPOISON). A poisoned page
    /// gives KVM_PFN_ERR_HWPOISON and x86 KVM calls kvm_send_hwpoison_signal(): BUS_MCEERR_AR to the vCPU
    /// thread with si_addr = the 4 KiB-aligned hva and si_addr_lsb = PAGE_SHIFT, whatever the backing page size.
    /// </summary>
    public AccessResult KvmGuestAccess(TaskStruct vcpu, ulong hva, ulong length)
    {
        ulong cur = hva, end = hva + length;
        while (cur < end)
        {
            var vma = vcpu.Mm.FindVma(cur);
            if (vma is null) return new(cur - hva, "KVM: -EFAULT (no memslot backing)");
            var r = Walk(vcpu.Mm, cur);
            var e = r.Entry;
            bool leaf = e.Present && (r.Level == PtLevel.Pte || e.Huge);
            if (!leaf)
            {
                var fr = HandleMmFault(vcpu, vma, cur, write: false, fromGup: true);
                if (fr.Kind == FaultKind.Hwpoison)
                {
                    ulong a = Units.AlignDown(cur, Units.PAGE_SIZE);
                    ReportMceErr(vcpu, Sig.BUS_MCEERR_AR, a, Units.PAGE_SHIFT, forced: true);
                    return new(cur - hva, "SIGBUS BUS_MCEERR_AR (kvm_send_hwpoison_signal)");
                }
                if (fr.Kind != FaultKind.Mapped) return new(cur - hva, $"KVM: fault {fr.Kind}");
                continue;
            }
            ulong n = Math.Min(end, r.Va + r.Size) - cur;
            ulong pa = (e.Pfn << Units.PAGE_SHIFT) + (cur - r.Va);
            if (Phys.FirstPoisonedLine(pa, n) is { } bad)
            {
                // consumed in guest mode: the host MCE handler runs memory_failure() in the vCPU task's context
                var prev = Current; Current = vcpu;
                int before = vcpu.SignalsReceived;
                MemoryFailure(bad >> Units.PAGE_SHIFT, MfFlags.MF_ACTION_REQUIRED, bad);
                Current = prev;
                if (vcpu.SignalsReceived != before) return new(bad - pa + cur - hva, "SIGBUS BUS_MCEERR_AR (machine check in guest mode)");
                continue;
            }
            cur += n;
        }
        return new(length, "ok");
    }
}

using HugeFault.Mm;

namespace HugeFault.Policies;

/// <summary>
/// Repair in place (Dan Williams, design-debate option 4). The error is reported at cacheline granularity
/// (si_addr_lsb = 6, si_addr = the bad line); the folio is unmapped as usual; the process (its SIGBUS
/// handler, when <c>auto=true</c>, the default) asks the kernel to repair the line with MADV_REPAIR — a new
/// advice modelled on DAX_RECOVERY_WRITE: an atomic 64-byte zero write (MOVDIR64B) that clears transient and
/// deposited poison. On success the raw page's record goes, the folio is usable again and mappers refault it;
/// 64 bytes of data are lost (zeroed). Permanent poison cannot be repaired: the policy falls back to
/// <c>fallback</c> (default mainline: "unmap per usual"). For a VM's guest memory the repair is refused unless <c>enlightened=true</c>,
/// because the kernel may not zero guest memory behind the guest's back.
/// </summary>
public sealed class RepairPolicy : RecoveryPolicyBase
{
    /// <summary>This policy's name, summary, parameters and provenance (see <see cref="PolicyDescriptor"/>).</summary>
    public static readonly PolicyDescriptor Descriptor = new("repair", "report the cacheline (lsb 6); MADV_REPAIR zeroes it if not permanent; else fall back",
        p => new RepairPolicy(p),
        Parameters:
        [
            new("auto", "true", "the SIGBUS handler asks for MADV_REPAIR by itself", ParameterKind.Bool),
            new("enlightened", "false", "the guest accepts 64 zeroed bytes (else guest memory is never repaired)", ParameterKind.Bool),
            new("fallback", "mainline", "policy for what cannot be repaired", ParameterKind.Policy),
        ],
        FallsBackWhen: "permanent poison, or guest memory without enlightened=true: fallback");

    private readonly bool _auto, _enlightened;
    private readonly IRecoveryPolicy _fallback;

    public RepairPolicy(IReadOnlyDictionary<string, string> parameters) : base(parameters)
    {
        _auto = !parameters.TryGetValue("auto", out var a) || a != "false";
        _enlightened = parameters.TryGetValue("enlightened", out var e) && e == "true";
        var fb = parameters.TryGetValue("fallback", out var f) ? f : "mainline";
        if (fb == "repair") throw new ArgumentException("repair cannot fall back to itself");
        _fallback = RecoveryPolicies.Create(fb, parameters);
    }

    public override string Name => Descriptor.Name;
    public string Fallback => _fallback.Name;

    public override (MfResult, string) HandleInUseHugetlb(Kernel k, MfContext ctx)
    {
        var folio = ctx.Folio;
        var kind = k.Phys.LinePoison(ctx.PhysAddr);
        bool guest = folio.Mapping?.GuestMemory == true;
        if (guest && !_enlightened)
        {
            k.Act("repair refused: guest memory of an unenlightened guest may not be zeroed; falling back to " + _fallback.Name);
            return _fallback.HandleInUseHugetlb(k, ctx);
        }
        if (kind is null or PoisonKind.Permanent && _auto)
        {
            // a software-injected or permanent error cannot be repaired: do what the fallback does
            k.Act($"repair impossible ({(kind is null ? "no hardware line to rewrite" : "permanent poison")}); falling back to {_fallback.Name}");
            return _fallback.HandleInUseHugetlb(k, ctx);
        }
        // unmap as usual; the signal names the cacheline
        k.LineReport = ctx.PhysAddr & (Units.PAGE_SIZE - 1);
        var r = base.HandleInUseHugetlb(k, ctx);
        k.LineReport = null;
        if (_auto) Repair(k, folio, ctx.PhysAddr);
        return r;
    }

    /// <summary>A free page holds no one's data: the kernel rewrites a non-permanent line itself and keeps the page.</summary>
    public override (MfResult, string)? HandleFreeHugetlb(Kernel k, MfContext ctx)
    {
        if (k.Phys.LinePoison(ctx.PhysAddr) is not (PoisonKind.Transient or PoisonKind.Deposited)) return null;
        var folio = ctx.Folio;
        k.Phys.RepairLine(ctx.PhysAddr);
        folio.RawHwp.Remove(ctx.RawPfn);
        if (folio.RawHwp.Count == 0) folio.Flags = folio.Flags.Without(PageFlags.PG_hwpoison);
        k.Stats.Repairs++;
        k.Log($"repair: {Units.Hex(Units.AlignDown(ctx.PhysAddr, Units.CACHELINE))}: free huge page, line rewritten with zeros");
        return (MfResult.MF_RECOVERED, "free huge page (repaired)");
    }

    public override (ulong, int) AdjustReport(Kernel k, TaskStruct t, ulong addr, int lsb)
    {
        if (k.LineReport is { } lo && Report is ReportGranularity.Native) return (Units.AlignDown(addr, Units.PAGE_SIZE) + Units.AlignDown(lo, Units.CACHELINE), Units.CACHELINE_SHIFT);
        return base.AdjustReport(k, t, addr, lsb);
    }

    /// <summary>The MADV_REPAIR path for one poisoned line of folio: rewrite it, and if that cleared it, make the folio whole again.</summary>
    public bool Repair(Kernel k, Folio folio, ulong pa)
    {
        ulong line = Units.AlignDown(pa, Units.CACHELINE);
        if (!k.Phys.RepairLine(line))
        {
            k.Log($"repair: {Units.Hex(line)}: permanent poison, the line cannot be rewritten");
            return false;
        }
        folio.Content?.Zero((uint)((line - folio.PhysAddr) >> Units.CACHELINE_SHIFT), (uint)((line - folio.PhysAddr) >> Units.CACHELINE_SHIFT) + 1);
        k.Stats.BytesZeroed += (long)Units.CACHELINE; k.Stats.Repairs++;
        ulong raw = line >> Units.PAGE_SHIFT;
        if (k.Phys.FirstPoisonedLine(raw << Units.PAGE_SHIFT, Units.PAGE_SIZE) is null && folio.RawHwp.Remove(raw)) k.NumPoisonedPages--;
        if (folio.RawHwp.Count == 0)
        {
            folio.Flags = folio.Flags.Without(PageFlags.PG_hwpoison);
            // every hwpoison entry of the folio goes, so mappers simply refault it
            foreach (var (vma, hva) in k.FolioMappings(folio, onlyMapped: false))
                k.ForEachLeaf(vma.Mm, hva, hva + folio.Size, r => { if (r.Entry.IsHwpoison && folio.ContainsPfn(r.Entry.Pfn)) k.ZapEntry(r); });
            k.DropMfRef(folio);
        }
        k.Log($"repair: {Units.Hex(line)}: 64 bytes rewritten with zeros (MADV_REPAIR), folio {Units.Hex(folio.Pfn)} usable again");
        return true;
    }

    public override SysResult? Madvise(Kernel k, TaskStruct t, ulong start, ulong end, int advice)
    {
        if (advice != MadvRepair.MADV_REPAIR) return _fallback.Madvise(k, t, start, end, advice);
        int repaired = 0, failed = 0;
        foreach (var v in t.Mm.Vmas.Where(v => v.Start < end && v.End > start && v.File is not null))
        {
            var inode = v.File!;
            for (ulong a = Math.Max(start, v.Start); a < Math.Min(end, v.End); )
            {
                ulong idx = v.FileOffset(a) / inode.FolioSize;
                ulong fend = Math.Min(Math.Min(end, v.End), a - v.FileOffset(a) % inode.FolioSize + inode.FolioSize);
                if (inode.PageCache.TryGetValue(idx, out var f))
                {
                    ulong pa0 = f.PhysAddr + v.FileOffset(a) % inode.FolioSize;
                    while (k.Phys.FirstPoisonedLine(pa0, fend - a) is { } bad && bad < pa0 + (fend - a))
                    {
                        if (f.Mapping?.GuestMemory == true && !_enlightened) return SysResult.Err(Errno.EPERM);
                        if (Repair(k, f, bad)) repaired++; else { failed++; break; }
                    }
                }
                a = fend;
            }
        }
        return failed > 0 ? SysResult.Err(Errno.EIO) : SysResult.Ok(repaired);
    }

    public override bool AllowFaultOnPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong va) => _fallback.AllowFaultOnPoisonedFolio(k, vma, folio, va);
    public override bool MapPoisonedFolio(Kernel k, Vma vma, Folio folio, ulong hva, bool writable) => _fallback.MapPoisonedFolio(k, vma, folio, hva, writable);
    public override int HandleRepoisonHugetlb(Kernel k, MfContext ctx) => _fallback.HandleRepoisonHugetlb(k, ctx);
}

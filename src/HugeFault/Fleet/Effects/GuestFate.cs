using HugeFault.Virt;

namespace HugeFault.Fleet;

/// <summary>
/// Whether a VM survives a UE event, from what the VM model (<see cref="Vm"/>) does with machine checks and from what
/// the event's effect says the guest received. The guest model's rules (Vm.GuestMce): a machine check on a page holding
/// guest-kernel memory panics the guest (action required: consumed in kernel context; action optional: the page is
/// unhandlable to the guest's memory_failure() and the guest kernel reads it next); any other machine check offlines
/// the 4 KiB page (and kills the guest process using it when action required). Linux has no machine-check budget (see
/// <see cref="GuestConfig.MaxMces"/>); <c>guest.max_mces</c> within <c>guest.mce_window_s</c> adds one as a what-if.
/// The probe host runs the guest with no budget and no guest-kernel pages so that the effect table stays independent
/// of them. A test replays the rules on the VM model.
/// <para>Which guest pages hold guest-kernel memory the VM model decides by a hash of the gfn; the fleet draws it: the
/// k-th machine check a VM takes on distinct pages is the first on guest-kernel memory with probability f(1−f)^(k−1)
/// (geometric, from the site's uniform).</para>
/// <para>Touching lost memory later: bytes the guest lost without being told (<see cref="EventEffect.UnknownLost"/>: a design
/// that unmaps the whole gigabyte but reports one page) are touched at the workload's rate (<c>touches_per_line_hour</c> ×
/// the VM's hotness per line), each touch of a new 4 KiB page a new action-required machine check (KVM's
/// kvm_send_hwpoison_signal()). The guest dies at the touch that hits guest-kernel memory (or, with a what-if budget,
/// when the touches come fast enough to exceed it within one window); if that happens before the VM's end, the VM is
/// counted killed at the event (the delay is seconds to minutes for any plausible rate).</para>
/// </summary>
internal sealed class GuestFate
{
    private readonly double _kernelFraction, _logSurvive, _windowHours, _touchesPerLineHour;
    private readonly long _maxMces;

    public GuestFate(FleetGuestConfig g, double touchesPerLineHour)
    {
        _kernelFraction = g.GuestKernelFraction;
        _logSurvive = g.GuestKernelFraction < 1 ? Math.Log(1 - g.GuestKernelFraction) : double.NegativeInfinity;
        _maxMces = g.MaxMces ?? long.MaxValue;
        _windowHours = g.MceWindowSeconds / 3600.0;
        _touchesPerLineHour = touchesPerLineHour;
    }

    /// <summary>The index (1-based) of the first action-required machine check on guest-kernel memory, from a uniform draw.</summary>
    public double KernelHit(double u)
    {
        if (_kernelFraction <= 0) return double.PositiveInfinity;
        if (_kernelFraction >= 1) return 1;
        // P(K > k) = (1 − f)^k, so K = 1 + floor(ln(1 − u) / ln(1 − f)); K = 1 exactly when u < f.
        return 1 + Math.Floor(Math.Log(1 - u) / _logSurvive);
    }

    /// <summary>
    /// Does the VM die of this event? <paramref name="mces"/> is the number of machine checks the
    /// event delivered, <paramref name="unknownLost"/> the bytes it lost without telling the guest, <paramref name="hot"/> the
    /// VM's hotness, <paramref name="remainingHours"/> its remaining lifetime, <paramref name="u"/> the site's uniform.
    /// </summary>
    public bool Dies(bool died, long mces, long unknownLost, double hot, double remainingHours, double u)
    {
        if (died || mces > _maxMces) return true;
        // the first machine check on guest-kernel memory is among this event's: K ≤ mces
        if (mces > 0 && (mces == 1 ? u < _kernelFraction : KernelHit(u) <= mces)) return true;
        if (unknownLost <= 0 || _touchesPerLineHour <= 0) return false;
        double pages = unknownLost / 4096.0;
        double perPage = 64 * _touchesPerLineHour * hot; // touches of one 4 KiB page per hour
        double touches = TouchesToDeath(mces, pages * perPage * _windowHours, KernelHit(u));
        if (touches > pages) return false; // every lost page offlined first (it holds no guest-kernel memory)
        // Expected time until the touches-th distinct page is first touched: Σ 1/((pages − i)·perPage), i < touches,
        // between touches/(pages·perPage) and touches/((pages − touches + 1)·perPage).
        if (touches / ((pages - touches + 1) * perPage) < remainingHours) return true;
        if (touches / (pages * perPage) >= remainingHours) return false;
        double hours = (Harmonic(pages) - Harmonic(pages - touches)) / perPage;
        return hours < remainingHours;
    }

    /// <summary>
    /// Touches of lost pages (one machine check each) after which the guest dies: the one that hits guest-kernel memory,
    /// or the one that exceeds the budget when <paramref name="touchesPerWindow"/> exceed it; +∞ if neither.
    /// <paramref name="kernelHit"/> is <see cref="KernelHit"/> of the site's uniform.
    /// </summary>
    internal double TouchesToDeath(long mces, double touchesPerWindow, double kernelHit)
    {
        double toKernel = kernelHit - mces;
        double toStorm = touchesPerWindow > _maxMces ? _maxMces + 1 - Math.Min(mces, _maxMces) : double.PositiveInfinity;
        return Math.Min(toKernel, toStorm);
    }

    /// <summary>H(x) ≈ ln x + γ + 1/(2x) − 1/(12x²) (exact enough for x ≥ 1; H(0) = 0).</summary>
    private static double Harmonic(double x) => x < 1 ? x : Math.Log(x) + 0.5772156649015329 + 1 / (2 * x) - 1 / (12 * x * x);
}

using CsCheck;

namespace HugeFault.Tests.Properties;

/// <summary>
/// Random sequences of syscalls, accesses and hardware errors on a small host keep the kernel model's
/// invariants after every step (see <see cref="Invariants"/>), and the same sequence gives the same trace.
/// </summary>
public class KernelProperties
{
    private static string Print(Op[] ops) => string.Join(", ", ops.Select(o => o.ToString()));

    [Fact]
    public void Random_operation_sequences_keep_every_invariant_after_every_step()
    {
        Pbt.Run(KernelWorld.GenOps, ops => KernelWorld.RunChecked(ops), iter: 600, stream: 1, Print);
    }

    [Fact]
    public void Random_sequences_without_errors_keep_every_invariant_after_every_step()
    {
        var faultFree = KernelWorld.GenOp.Where(o => o.Kind is not (OpKind.MadvHwpoison or OpKind.MadvSoftOffline or OpKind.HwErrorScrub or OpKind.HwErrorLatent or OpKind.HwErrorAnyFolio)).Array[1, 60];
        Pbt.Run(faultFree, ops => KernelWorld.RunChecked(ops), iter: 300, stream: 2, Print);
    }

    [Fact]
    public void The_same_sequence_gives_a_byte_identical_trace()
    {
        static string TraceOf(Op[] ops)
        {
            var w = new KernelWorld();
            foreach (var op in ops) w.Apply(op);
            return string.Join("\n", w.K.Trace.Select(e => $"{e.TimeNs} {e.Kind} {e.Describe()}"));
        }
        Pbt.Run(KernelWorld.GenOps, ops => Assert.Equal(TraceOf(ops), TraceOf(ops)), iter: 100, stream: 3, Print);
    }
}

using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault;

/// <summary>Per-task memory-failure kill policy set by prctl(PR_MCE_KILL) (PF_MCE_PROCESS / PF_MCE_EARLY).</summary>
public enum MceKillPolicy { Default, Early, Late }

/// <summary>What a task does with a SIGBUS: a handler that records it and goes on (as test programs and QEMU do), or the default action (die).</summary>
public enum SigbusDisposition { Handle, Default }

/// <summary>struct task_struct (a thread), with its thread group's mm and file table.</summary>
public sealed class TaskStruct
{
    public TaskStruct(int pid, string comm, MmStruct mm) { Pid = pid; Comm = comm; Mm = mm; }
    public int Pid { get; }
    public int Tgid { get; init; }
    public string Comm { get; }
    public MmStruct Mm { get; set; }
    public Dictionary<int, OpenFile> Fds { get; init; } = new();
    public MceKillPolicy MceKill { get; set; }
    public SigbusDisposition Sigbus { get; set; } = SigbusDisposition.Handle;
    public bool Alive { get; set; } = true;
    public string? ExitReason { get; set; }
    public int SignalsReceived { get; set; }
    public override string ToString() => $"{Comm}:{Pid}";
}

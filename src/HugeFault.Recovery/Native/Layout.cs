using System.Runtime.InteropServices;

namespace HugeFault.Recovery.Native;

// Mirrors of the structures in hf.h (offsets checked there with _Static_assert). Change both together.

/// <summary>states[] word of a huge page: ST_* in hf.h.</summary>
internal static class PageState
{
    public const uint Normal = 0, Poisoned = 1, Recovered = 2, Failed = 3;
}

/// <summary>hf_ctl.flags.</summary>
[Flags]
internal enum CtlFlags : uint
{
    None = 0,
    Thp = 1,
    StrictScan = 2,
    DontFork = 4,
}

/// <summary>struct hf_sigrec: one signal seen by the handler.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct HfSigrec
{
    [FieldOffset(0)] public int Signo;
    [FieldOffset(4)] public int Code;
    [FieldOffset(8)] public ulong Addr;
    [FieldOffset(16)] public int Lsb;
    [FieldOffset(20)] public int Tid;
    [FieldOffset(24)] public ulong Rip;
    [FieldOffset(32)] public long TFault;
    [FieldOffset(40)] public long TResume;
    [FieldOffset(48)] public int Action;
}

/// <summary>struct hf_page: what happened to one huge page.</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal struct HfPage
{
    [FieldOffset(0)] public ulong FirstAddr;
    [FieldOffset(8)] public int FirstCode;
    [FieldOffset(12)] public int FirstLsb;
    [FieldOffset(16)] public long TEvent;
    [FieldOffset(24)] public long TStart;
    [FieldOffset(32)] public long TFilled;
    [FieldOffset(40)] public long TSwapped;
    [FieldOffset(48)] public ulong Copied;
    [FieldOffset(56)] public uint Lost;
    [FieldOffset(60)] public uint Runs;
    [FieldOffset(64)] public int Mfd;
    [FieldOffset(68)] public int Err;
    [FieldOffset(72)] public uint Step;
    [FieldOffset(76)] public int OtherPid;
    [FieldOffset(80)] public uint Uninspected;
    [FieldOffset(84)] public uint Reported;
    [FieldOffset(88)] public long TScanned;
}

/// <summary>struct hf_region: one protected range.</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal unsafe struct HfRegion
{
    [FieldOffset(0)] public ulong Start;
    [FieldOffset(8)] public ulong End;
    [FieldOffset(16)] public ulong FileOff;
    [FieldOffset(24)] public uint Shift;
    [FieldOffset(28)] public int Fd;
    [FieldOffset(32)] public uint* States;
    [FieldOffset(40)] public HfPage* Pages;
    [FieldOffset(48)] public ulong* Lost;
    [FieldOffset(56)] public ulong Dev;
    [FieldOffset(64)] public ulong Ino;
    [FieldOffset(72)] public int Prot;
    [FieldOffset(76)] public uint PatLen;
    [FieldOffset(80)] public fixed byte Pattern[40];
    [FieldOffset(120)] public ulong Reserve;
}

/// <summary>struct hf_ctl: the control block the handler finds through g_ctl.</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal unsafe struct HfCtl
{
    public const int MaxRegions = 16, MaxRecords = 1024, ScanBuf = 64 * 1024;
    public const int RegionsOffset = 128, RecsOffset = RegionsOffset + MaxRegions * 128, Size = RecsOffset + MaxRecords * 64;
    public const ulong Magic = 0x4846524543563031UL;

    [FieldOffset(0)] public ulong MagicWord;
    [FieldOffset(8)] public int Pid;
    [FieldOffset(12)] public uint NRegions;
    [FieldOffset(16)] public uint Events;
    [FieldOffset(20)] public uint Done;
    [FieldOffset(24)] public uint Stop;
    [FieldOffset(28)] public int Uffd;
    [FieldOffset(32)] public uint Flags;
    [FieldOffset(36)] public uint Started;
    [FieldOffset(40)] public nint Sys;
    [FieldOffset(48)] public ulong PrevHandler;
    [FieldOffset(56)] public ulong PrevFlags;
    [FieldOffset(80)] public ulong NRec;
    [FieldOffset(88)] public ulong ScanBufAddr;
    [FieldOffset(96)] public long PrctlRet;
    [FieldOffset(104)] public int Nice;
    [FieldOffset(108)] public int NiceRet;

    public static HfRegion* Region(HfCtl* c, int i) => (HfRegion*)((byte*)c + RegionsOffset + i * sizeof(HfRegion));
    public static HfSigrec* Record(HfCtl* c, long i) => (HfSigrec*)((byte*)c + RecsOffset + i * sizeof(HfSigrec));
}

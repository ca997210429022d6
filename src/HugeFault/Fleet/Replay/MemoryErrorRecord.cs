namespace HugeFault.Fleet.Replay;

/// <summary>
/// One uncorrected memory error from an operator's log, as the kernel reported it: its physical address, whether a CPU
/// consumed it (action required: <c>MCG_STATUS/MCi_STATUS.AR</c>, the SIGBUS path of <c>kill_me_maybe()</c>) or it was
/// found by the patrol scrub or the memory controller (action optional, <c>memory_failure()</c> from the MCE/GHES
/// notifier), and where in the log it came from (<c>file:row N</c> or <c>file:line N</c>).
/// </summary>
/// <param name="Source">Where in the log: "ras-mc_event.db mc_event row 3", "mcelog.txt:41".</param>
/// <param name="Time">When it was logged (UTC), if the log says.</param>
/// <param name="Address">Physical address (null when the log has none: such errors cannot be placed on a page).</param>
/// <param name="Consumed">A CPU read the bad line (action required).</param>
/// <param name="Location">What the log says about the DIMM (label, socket/channel/slot, or bank), for the per-error table.</param>
/// <param name="Dram">The DIMM, rank, bank, row and column when the log has them (the fault shape is read from them).</param>
public sealed record MemoryErrorRecord(string Source, DateTimeOffset? Time, ulong? Address, bool Consumed, string Location, DramLocation? Dram = null);

/// <summary>A log read: its uncorrected memory errors, how many corrected ones it also held, or the first problem (file and row/line).</summary>
public sealed record MemoryErrorLog(string Format, IReadOnlyList<MemoryErrorRecord> Errors, long Corrected, string? Error = null)
{
    public static MemoryErrorLog Fail(string format, string error) => new(format, [], 0, error);
}

/// <summary>Reads a log file of either kind: a rasdaemon SQLite database (by its header) or mcelog text.</summary>
public static class MemoryErrorLogs
{
    public static MemoryErrorLog Read(string path)
    {
        if (!File.Exists(path)) return MemoryErrorLog.Fail("?", $"{path}: file not found");
        Span<byte> head = stackalloc byte[16];
        int n;
        using (var f = File.OpenRead(path)) n = f.Read(head);
        return n == 16 && System.Text.Encoding.ASCII.GetString(head[..15]) == "SQLite format 3" ? RasdaemonDb.Read(path) : McelogText.Read(path);
    }

    /// <summary>MCi_STATUS bits (Intel SDM vol. 3B §16.3.2.2; the kernel's MCI_STATUS_* in arch/x86/include/asm/mce.h).</summary>
    public const int StatusVal = 63, StatusUc = 61, StatusMiscV = 59, StatusAddrV = 58, StatusS = 56, StatusAr = 55;

    public static bool Bit(ulong status, int bit) => (status >> bit & 1) != 0;
}

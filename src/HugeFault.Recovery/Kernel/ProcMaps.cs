using System.Globalization;

namespace HugeFault.Recovery.Kernel;

/// <summary>One line of /proc/PID/maps (show_map_vma(), fs/proc/task_mmu.c).</summary>
public sealed record MapsLine(ulong Start, ulong End, string Perms, ulong Offset, uint Major, uint Minor, ulong Inode, string Path)
{
    /// <summary>'s' in the fourth permission column: MAP_SHARED.</summary>
    public bool Shared => Perms.Length == 4 && Perms[3] == 's';

    /// <summary>PROT_* of the permission columns.</summary>
    public int Prot => (Perms[0] == 'r' ? Uapi.PROT_READ : 0) | (Perms[1] == 'w' ? Uapi.PROT_WRITE : 0) | (Perms[2] == 'x' ? Uapi.PROT_EXEC : 0);

    /// <summary>Parses "7f0000000000-7f0000200000 rw-s 00000000 00:0f 1234   /memfd:x (deleted)"; null if malformed.</summary>
    public static MapsLine? Parse(string line)
    {
        var f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        if (f.Length < 5) return null;
        int dash = f[0].IndexOf('-'), colon = f[3].IndexOf(':');
        if (dash < 0 || colon < 0 || f[1].Length != 4) return null;
        var hex = NumberStyles.AllowHexSpecifier;
        var inv = CultureInfo.InvariantCulture;
        if (!ulong.TryParse(f[0].AsSpan(0, dash), hex, inv, out var s) || !ulong.TryParse(f[0].AsSpan(dash + 1), hex, inv, out var e)
            || !ulong.TryParse(f[2], hex, inv, out var off) || !uint.TryParse(f[3].AsSpan(0, colon), hex, inv, out var maj)
            || !uint.TryParse(f[3].AsSpan(colon + 1), hex, inv, out var min) || !ulong.TryParse(f[4], NumberStyles.None, inv, out var ino))
            return null;
        return new MapsLine(s, e, f[1], off, maj, min, ino, f.Length > 5 ? f[5].Trim() : "");
    }

    /// <summary>new_encode_dev()'s inverse: MAJOR/MINOR of a 64-bit st_dev as the kernel prints them.</summary>
    public static (uint Major, uint Minor) DevParts(ulong dev) => ((uint)((dev >> 8) & 0xfff), (uint)((dev & 0xff) | ((dev >> 12) & 0xfff00)));

    /// <summary>The text /proc/PID/maps prints for a file: " MAJ:MIN INO " (two hex digits at least).</summary>
    public static string Pattern(ulong dev, ulong ino)
    {
        var (maj, min) = DevParts(dev);
        return string.Create(CultureInfo.InvariantCulture, $" {maj:x2}:{min:x2} {ino} ");
    }
}

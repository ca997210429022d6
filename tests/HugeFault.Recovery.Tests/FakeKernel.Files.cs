using System.Text;
using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Tests;

/// <summary>The fake's files: /proc (self and other processes), /proc/sys, /sys THP knobs.</summary>
internal sealed unsafe partial class FakeKernel
{
    private long OpenAt(string path, int flags)
    {
        string? text = null;
        List<string>? dir = null;
        int dirPid = 0;
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (path == "/proc") dir = ["self", "sys", .. Procs.Keys.Append(Pid).Distinct().Order().Select(p => p.ToString())];
        else if (path == "/proc/self/maps" || path == $"/proc/{Pid}/maps") text = SelfMaps();
        else if (path == "/proc/sys/vm/memory_failure_recovery") { if (!MemoryFailure) return -ENOENT; text = "1\n"; }
        else if (path == "/sys/kernel/mm/transparent_hugepage/shmem_enabled") text = ShmemEnabled + "\n";
        else if (parts.Length == 3 && parts[0] == "proc" && int.TryParse(parts[1], out int pid) && Procs.TryGetValue(pid, out var p))
        {
            switch (parts[2])
            {
                case "maps":
                    if (p.MapsErr != 0) return p.MapsErr;
                    text = p.Maps ?? "";
                    break;
                case "fd":
                    if (p.FdErr != 0) return p.FdErr;
                    dir = p.Fds.Select(x => x.Name).ToList();
                    dirPid = pid;
                    break;
                case "comm": text = p.Comm + "\n"; break;
                default: return -ENOENT;
            }
        }
        else if (parts.Length >= 2 && parts[0] == "proc" && int.TryParse(parts[1], out _)) return -ENOENT;
        else return -ENOENT;
        if (dir is not null && (flags & O_DIRECTORY) == 0) return -EISDIR;
        if (dir is null && (flags & O_DIRECTORY) != 0) return -ENOTDIR;
        return AddFd(new Open { Text = text, Dir = dir is null ? null : [".", "..", .. dir], DirPid = dirPid, Flags = flags });
    }

    private const int EISDIR = 21, ENOTDIR = 20;

    private long Read(int fd, byte* buf, long n)
    {
        if (!_fds.TryGetValue(fd, out var o) || o.Text is null) return -EBADF;
        var bytes = Encoding.UTF8.GetBytes(o.Text);
        long k = Math.Min(n, bytes.Length - o.Pos);
        new ReadOnlySpan<byte>(bytes, (int)o.Pos, (int)k).CopyTo(new Span<byte>(buf, (int)k));
        o.Pos += k;
        return k;
    }

    /// <summary>linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }, records 8-aligned.</summary>
    private long Getdents(int fd, byte* buf, long cap)
    {
        if (!_fds.TryGetValue(fd, out var o) || o.Dir is null) return -ENOTDIR;
        long at = 0;
        while (o.Pos < o.Dir.Count)
        {
            var name = Encoding.ASCII.GetBytes(o.Dir[(int)o.Pos]);
            int rec = (19 + name.Length + 1 + 7) & ~7;
            if (at + rec > cap) break;
            byte* d = buf + at;
            new Span<byte>(d, rec).Clear();
            *(ulong*)d = 1; *(long*)(d + 8) = o.Pos + 1; *(ushort*)(d + 16) = (ushort)rec; d[18] = 0;
            name.CopyTo(new Span<byte>(d + 19, name.Length));
            at += rec;
            o.Pos++;
        }
        return at;
    }

    private long FstatAt(int dirfd, string name, ulong* st)
    {
        if (!_fds.TryGetValue(dirfd, out var o) || o.Dir is null || !Procs.TryGetValue(o.DirPid, out var p)) return -EBADF;
        foreach (var (n, dev, ino) in p.Fds)
            if (n == name) { st[0] = dev; st[1] = ino; return 0; }
        return -ENOENT;
    }

    /// <summary>The maps line another process would show for a mapping of the file.</summary>
    public static string MapsLineFor(VFile f, ulong start) =>
        $"{start:x8}-{start + (ulong)f.Size:x8} rw-s 00000000 {f.Dev >> 8:x2}:{f.Dev & 0xff:x2} {f.Ino}   /memfd:{f.Name} (deleted)\n";
}

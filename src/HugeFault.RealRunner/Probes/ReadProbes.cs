using HugeFault.RealRunner.Native;
using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Probes;

/// <summary>read()/pread() of a poisoned hugetlb memfd folio (cases 9-11, 13; hugetlbfs_read_iter).</summary>
internal static unsafe class ReadProbes
{
    private const long L = HPAGE_2M, P = PAGE_SIZE;
    private const long Poisoned = L / 2 + P;

    private static byte Pattern(long off) => (byte)(off * 7 + (off >> 12) + 1);

    public static void PreadPoisoned(Probe p)
    {
        long fd = p.MemfdCreate("memfd", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate", fd, 2 * L);   // folio 0 written, folio 1 left a hole
        p.Mmap("mmap", "F", L, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        byte* src = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)L);
        for (long i = 0; i < L; i++) src[i] = Pattern(i);
        long left = ExceptionTable.CopyMc(p.At("F", 0), src, L);
        p.Emit(p.Line("fill", "copy_mc").Hex("not_copied", (ulong)left));
        p.Meminfo("before");
        p.Madvise("inject", "F", Poisoned, P, MADV_HWPOISON);
        p.Meminfo("after-inject");
        p.Munmap("munmap", "F");

        byte* buf = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)(4 * L));
        foreach (long c in new[] { P / 2, P, 2 * P, 4 * P })
        {
            // case 9: sequential read() from 0
            ExceptionTable.Syscall(__NR_lseek, fd, 0, SEEK_SET);
            long total = 0, r, calls = 0, bad = -1;
            while ((r = ExceptionTable.Syscall(__NR_read, fd, (long)buf, c)) > 0)
            {
                for (long i = 0; i < r && bad < 0; i++) if (buf[i] != Pattern(total + i)) bad = total + i;
                total += r; calls++;
                if (total >= L) break;
            }
            long pos = ExceptionTable.Syscall(__NR_lseek, fd, 0, SEEK_CUR);
            p.Emit(p.Line($"seq-read-c{c}", "read").Hex("chunk", (ulong)c).Num("calls_ok", calls)
                .Hex("bytes_before_error", (ulong)total).Num("final_ret", r < 0 ? -1 : r)
                .Str("final_errno", r < 0 ? ErrnoName(-r) : null).Bool("data_ok", bad < 0)
                .Hex("pos_after", (ulong)pos).Hex("expected_bytes", Poisoned));

            // case 10: lseek past the poisoned page, read to L
            long start = L / 2 + Math.Max(2 * P, c);
            ExceptionTable.Syscall(__NR_lseek, fd, start, SEEK_SET);
            total = 0; bad = -1; calls = 0;
            while (start + total < L && (r = ExceptionTable.Syscall(__NR_read, fd, (long)buf, Math.Min(c, L - start - total))) > 0)
            {
                for (long i = 0; i < r && bad < 0; i++) if (buf[i] != Pattern(start + total + i)) bad = start + total + i;
                total += r; calls++;
            }
            if (start + total >= L) r = 0;
            p.Emit(p.Line($"skip-read-c{c}", "read").Hex("chunk", (ulong)c).Hex("start", (ulong)start)
                .Hex("bytes", (ulong)total).Hex("expected_bytes", (ulong)(L - start)).Num("calls_ok", calls)
                .Num("final_ret", r < 0 ? -1 : r).Str("final_errno", r < 0 ? ErrnoName(-r) : null).Bool("data_ok", bad < 0));
        }

        // case 11: short read spanning the poisoned page, then exactly at it, inside it, and after it.
        PreadCheck(p, fd, buf, "pread-3P-at-X-P", Poisoned - P, 3 * P);
        PreadCheck(p, fd, buf, "pread-P-at-X", Poisoned, P);
        PreadCheck(p, fd, buf, "pread-100-at-X+100", Poisoned + 100, 100);
        PreadCheck(p, fd, buf, "pread-P-at-X+P", Poisoned + P, P);
        PreadCheck(p, fd, buf, "pread-2P-at-X-100", Poisoned - 100, 2 * P);
        PreadCheck(p, fd, buf, "pread-L-at-0", 0, L);
        // case 13: hole (folio 1 never allocated), across the folio boundary, at EOF.
        PreadCheck(p, fd, buf, "pread-hole", L + 8 * P, 4 * P);
        PreadCheck(p, fd, buf, "pread-across-boundary", L - P, 2 * P);
        PreadCheck(p, fd, buf, "pread-at-eof", 2 * L, P);
        p.Meminfo("end");
    }

    private static void PreadCheck(Probe p, long fd, byte* buf, string step, long off, long len)
    {
        new Span<byte>(buf, (int)len).Fill(0xEE);
        long r = ExceptionTable.Syscall(__NR_pread64, fd, (long)buf, len, off);
        long bad = -1, zeros = 0;
        for (long i = 0; i < Math.Max(r, 0); i++)
        {
            long o = off + i;
            byte want = o >= L ? (byte)0 : Pattern(o);
            if (buf[i] == 0) zeros++;
            if (buf[i] != want && bad < 0) bad = o;
        }
        var l = p.Line(step, "pread64").Hex("off", (ulong)off).Hex("len", (ulong)len).Num("ret", r < 0 ? -1 : r);
        if (r < 0) l.Num("errno", -r).Str("errno_name", ErrnoName(-r));
        else l.Bool("data_ok", bad < 0).Num("zero_bytes", zeros);
        p.Emit(l);
    }
}

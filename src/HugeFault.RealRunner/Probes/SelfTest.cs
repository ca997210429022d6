using HugeFault.RealRunner.Native;
using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Probes;

/// <summary>
/// Checks the exception table on any Linux kernel: a load, a store and a rep-movsb copy past the end
/// of a one-page memfd mapped over two pages raise SIGBUS BUS_ADRERR and return their error markers.
/// </summary>
internal static class SelfTest
{
    public static void Run(Probe p)
    {
        long fd = p.MemfdCreate("memfd", 0);
        p.Ftruncate("ftruncate", fd, PAGE_SIZE);
        p.Mmap("mmap", "M", 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        long ok = p.Store("store-in-file", "M", 10, 42);
        long v = p.Load("load-in-file", "M", 10);
        long lf = p.Load("load-past-eof", "M", PAGE_SIZE + 8);
        long sf = p.Store("store-past-eof", "M", PAGE_SIZE + 8, 1);
        long left = p.CopyFrom("copy-across-eof", "M", PAGE_SIZE - 100, 300);
        bool pass = ok == 0 && v == 42 && lf == -1 && sf == -1 && left == 200
            && ExceptionTable.Count == 3;
        p.Emit(p.Line("verdict").Bool("pass", pass).Num("signals_total", ExceptionTable.Count));
    }
}

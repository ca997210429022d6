using HugeFault.RealRunner.Native;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Tests;

/// <summary>
/// The exception table works on any Linux kernel: accesses past the end of a one-page memfd mapped
/// over two pages raise SIGBUS BUS_ADRERR, which the handler turns into error markers.
/// </summary>
[Collection("signals")]
public sealed unsafe class ExceptionTableTests
{
    private static byte* MapPastEof()
    {
        ExceptionTable.Install();
        byte* name = stackalloc byte[] { (byte)'t', 0 };
        long fd = ExceptionTable.Syscall(__NR_memfd_create, (long)name, MFD_CLOEXEC);
        Assert.True(fd >= 0, $"memfd_create returned {fd}");
        Assert.Equal(0, ExceptionTable.Syscall(__NR_ftruncate, fd, PAGE_SIZE));
        long p = ExceptionTable.Syscall(__NR_mmap, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ExceptionTable.Syscall(__NR_close, fd);
        Assert.True(p > 0, $"mmap returned {p}");
        ExceptionTable.Drain();
        return (byte*)p;
    }

    [Fact]
    public void A_load_inside_the_file_returns_the_stored_byte_and_raises_nothing()
    {
        byte* p = MapPastEof();
        Assert.Equal(0, ExceptionTable.StoreByte(p + 5, 77));
        Assert.Equal(77, ExceptionTable.LoadByte(p + 5));
        Assert.Empty(ExceptionTable.Drain());
        ExceptionTable.Syscall(__NR_munmap, (long)p, 2 * PAGE_SIZE);
    }

    [Fact]
    public void A_load_past_eof_returns_minus_one_and_records_BUS_ADRERR_at_the_exact_address()
    {
        byte* p = MapPastEof();
        Assert.Equal(-1, ExceptionTable.LoadByte(p + PAGE_SIZE + 123));
        var r = Assert.Single(ExceptionTable.Drain());
        Assert.Equal(SIGBUS, r.Signo);
        Assert.Equal(BUS_ADRERR, r.Code);
        Assert.Equal((ulong)(p + PAGE_SIZE + 123), r.Addr);
        Assert.Equal("fixup", r.ActionName);
        Assert.Equal(Stubs.LoadByte, ExceptionTable.StubOffset(r.Rip));
        ExceptionTable.Syscall(__NR_munmap, (long)p, 2 * PAGE_SIZE);
    }

    [Fact]
    public void A_store_past_eof_returns_minus_one()
    {
        byte* p = MapPastEof();
        Assert.Equal(-1, ExceptionTable.StoreByte(p + PAGE_SIZE, 1));
        Assert.Equal(Stubs.StoreByte, ExceptionTable.StubOffset(Assert.Single(ExceptionTable.Drain()).Rip));
        ExceptionTable.Syscall(__NR_munmap, (long)p, 2 * PAGE_SIZE);
    }

    [Fact]
    public void A_copy_across_eof_reports_the_bytes_not_copied_like_copy_mc()
    {
        byte* p = MapPastEof();
        byte* dst = stackalloc byte[300];
        Assert.Equal(200, ExceptionTable.CopyMc(dst, p + PAGE_SIZE - 100, 300));
        var r = Assert.Single(ExceptionTable.Drain());
        Assert.Equal((ulong)(p + PAGE_SIZE), r.Addr);
        Assert.Equal(Stubs.CopyInsn, ExceptionTable.StubOffset(r.Rip));
        ExceptionTable.Syscall(__NR_munmap, (long)p, 2 * PAGE_SIZE);
    }

    [Fact]
    public void A_failing_syscall_returns_minus_errno()
    {
        ExceptionTable.Install();
        Assert.Equal(-EBADF, ExceptionTable.Syscall(__NR_close, 1_000_000));
    }
}

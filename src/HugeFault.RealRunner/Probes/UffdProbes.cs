using HugeFault.RealRunner.Native;
using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Probes;

/// <summary>
/// Case 21: UFFDIO_POISON on hugetlb. No fault-handling thread: every huge page of the registered
/// range is resolved up front (odd pages UFFDIO_COPY, even pages UFFDIO_POISON), then read.
/// </summary>
internal static unsafe class UffdProbes
{
    public static void Poison(Probe p)
    {
        p.Meminfo("start");
        Area(p, "private", MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1);
        long fd = p.MemfdCreate("memfd", MFD_HUGETLB | MFD_HUGE_2MB);
        p.Ftruncate("ftruncate", fd, 4 * HPAGE_2M);
        Area(p, "shared", MAP_SHARED, fd);
        for (int i = 0; i < 4; i++)
            SharedPoisonProbes.Pread(p, fd, $"shared-pread-page{i}", i * HPAGE_2M + 0x5000, PAGE_SIZE);
        p.Meminfo("end");
    }

    private static void Area(Probe p, string name, long flags, long fd)
    {
        const long n = 4;
        long uffd = p.Sys($"{name}-userfaultfd", "userfaultfd", __NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
        ulong* api = stackalloc ulong[3];
        api[0] = UFFD_API; api[1] = UFFD_FEATURE_POISON | UFFD_FEATURE_MISSING_HUGETLBFS; api[2] = 0;
        p.Sys($"{name}-UFFDIO_API", "ioctl", __NR_ioctl, uffd, UFFDIO_API, (long)api,
            extra: l => l.Hex("features", api[1]).Hex("ioctls", api[2]));
        p.Mmap($"{name}-mmap", name, n * HPAGE_2M, PROT_READ | PROT_WRITE, flags, fd, 0);
        p.Meminfo($"{name}-after-mmap");
        ulong* reg = stackalloc ulong[4];
        reg[0] = (ulong)p.At(name, 0); reg[1] = (ulong)(n * HPAGE_2M); reg[2] = UFFDIO_REGISTER_MODE_MISSING; reg[3] = 0;
        p.Sys($"{name}-UFFDIO_REGISTER", "ioctl", __NR_ioctl, uffd, UFFDIO_REGISTER, (long)reg,
            extra: l => l.Hex("range_ioctls", reg[3]));

        long src = ExceptionTable.Syscall(__NR_mmap, 0, HPAGE_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        new Span<byte>((void*)src, (int)HPAGE_2M).Fill(0x5A);

        // Alignment checks first (on page 0, still missing).
        UffdPoison(p, uffd, $"{name}-poison-unaligned-start", (ulong)p.At(name, PAGE_SIZE), PAGE_SIZE);
        UffdPoison(p, uffd, $"{name}-poison-aligned-start-4k-len", (ulong)p.At(name, 0), PAGE_SIZE);
        ulong* cp = stackalloc ulong[5];
        for (long i = 0; i < n; i++)
        {
            if (i % 2 == 1)
            {
                cp[0] = (ulong)p.At(name, i * HPAGE_2M); cp[1] = (ulong)src; cp[2] = (ulong)HPAGE_2M; cp[3] = 0; cp[4] = 0;
                p.Sys($"{name}-copy-page{i}", "ioctl", __NR_ioctl, uffd, UFFDIO_COPY, (long)cp,
                    extra: l => l.Str("ioctl", "UFFDIO_COPY").Num("copy", (long)cp[4]));
            }
            else
            {
                UffdPoison(p, uffd, $"{name}-poison-page{i}", (ulong)p.At(name, i * HPAGE_2M), HPAGE_2M);
            }
            p.Meminfo($"{name}-after-page{i}");
        }
        UffdPoison(p, uffd, $"{name}-poison-page0-again", (ulong)p.At(name, 0), HPAGE_2M);
        UffdPoison(p, uffd, $"{name}-poison-page1-populated", (ulong)p.At(name, HPAGE_2M), HPAGE_2M);
        for (long i = 0; i < n; i++)
        {
            p.Load($"{name}-read-page{i}+0", name, i * HPAGE_2M);
            p.Load($"{name}-read-page{i}+0x5000", name, i * HPAGE_2M + 0x5000);
            p.Load($"{name}-read-page{i}+last", name, (i + 1) * HPAGE_2M - 1);
        }
        p.Meminfo($"{name}-after-reads");
    }

    private static void UffdPoison(Probe p, long uffd, string step, ulong start, long len)
    {
        ulong* po = stackalloc ulong[4];
        po[0] = start; po[1] = (ulong)len; po[2] = 0; po[3] = 0;
        p.Sys(step, "ioctl", __NR_ioctl, uffd, UFFDIO_POISON, (long)po,
            extra: l => l.Str("ioctl", "UFFDIO_POISON").Hex("len", (ulong)len).Num("updated", (long)po[3]));
    }
}

using static HugeFault.Recovery.Kernel.Uapi;

namespace HugeFault.Recovery.Tests;

/// <summary>Protect checks everything first, reports every problem at once, and changes nothing when it refuses.</summary>
[Collection("native agent")]
public class ProtectTests
{
    private static readonly string[] Changes = ["mmap", "madvise", "dup", "memfd_create", "prctl", "UFFDIO_REGISTER"];

    private static void AssertNothingChanged(Rig rig)
    {
        Assert.DoesNotContain(rig.K.Calls, c => Changes.Contains(c.Split(' ')[0]));
        Assert.Empty(rig.Agent.Regions);
        Assert.Empty(rig.Agent.Signals());
    }

    [Fact]
    public void A_shared_hugetlb_mapping_on_6_12_is_protected_and_marked_dontfork()
    {
        using var rig = new Rig();
        var r = rig.Protect();
        Assert.True(r.Ok, r.Message);
        Assert.Equal(rig.Base, r.Region!.Address);
        Assert.Equal(Rig.M2, r.Region.HugePageSize);
        Assert.Equal(0, r.Region.FileOffset);
        Assert.Equal("6.12.117+deb12-amd64", r.Region.KernelRelease);
        Assert.Contains($"madvise {rig.Base:x} {rig.Size:x} {MADV_DONTFORK}", rig.K.Calls);
        Assert.Contains("prctl 33 1 1", rig.K.Calls); // PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY on the agent thread
        Assert.Contains(rig.K.Calls, c => c == $"UFFDIO_API 0x{UFFD_FEATURE_POISON:x}");
    }

    [Fact]
    public void Linux_6_1_is_refused_with_both_missing_features_named_and_nothing_changes()
    {
        using var rig = new Rig(setup: k => { k.Release = "6.1.0-35-amd64"; k.UffdFeatures = 0x3ff | (1UL << 4); });
        var r = rig.Protect();
        Assert.False(r.Ok);
        Assert.Equal([ProtectErrorKind.KernelTooOld, ProtectErrorKind.NoUffdPoison], r.Errors.Select(e => e.Kind));
        Assert.Contains("Linux 6.1.0-35-amd64 is older than 6.6", r.Message);
        Assert.Contains("UFFD_FEATURE_POISON", r.Message);
        Assert.Contains("Nothing was changed", r.Message);
        AssertNothingChanged(rig);
    }

    [Fact]
    public void A_kernel_without_memory_failure_is_refused()
    {
        using var rig = new Rig(setup: k => k.MemoryFailure = false);
        var r = rig.Protect();
        Assert.Equal([ProtectErrorKind.NoMemoryFailure], r.Errors.Select(e => e.Kind));
        Assert.Contains("CONFIG_MEMORY_FAILURE", r.Message);
        AssertNothingChanged(rig);
    }

    [Fact]
    public void A_denied_userfaultfd_names_the_sysctl_that_allows_it()
    {
        using var rig = new Rig(setup: k => k.UserfaultfdErr = -EPERM);
        var r = rig.Protect();
        Assert.Equal([ProtectErrorKind.UserfaultfdUnavailable], r.Errors.Select(e => e.Kind));
        Assert.Contains("vm.unprivileged_userfaultfd=1", r.Message);
        AssertNothingChanged(rig);
    }

    [Fact]
    public void An_unaligned_range_and_an_old_kernel_are_reported_together()
    {
        using var rig = new Rig(setup: k => k.Release = "5.15.0");
        var r = rig.Agent.ProtectRange(rig.Fd, rig.Base + 4096, rig.Size - 4096);
        Assert.Equal([ProtectErrorKind.KernelTooOld, ProtectErrorKind.Unaligned], r.Errors.Select(e => e.Kind).Where(k => k != ProtectErrorKind.NotMapped));
        AssertNothingChanged(rig);
    }

    [Fact]
    public void A_range_beyond_the_mapping_is_refused()
    {
        using var rig = new Rig();
        var r = rig.Agent.ProtectRange(rig.Fd, rig.Base, rig.Size + Rig.M2);
        Assert.Equal([ProtectErrorKind.NotMapped], r.Errors.Select(e => e.Kind));
        Assert.Contains("is not mapped from fd", r.Message);
        AssertNothingChanged(rig);
    }

    [Fact]
    public void A_private_mapping_is_refused_because_its_copy_is_not_in_the_file()
    {
        using var rig = new Rig();
        var fd = rig.K.CreateHugetlbFile(Rig.M2, Rig.M2, Rig.Pattern, "priv");
        var p = rig.K.MapHugetlb(fd, shared: false);
        var r = rig.Agent.ProtectRange(fd, p, Rig.M2);
        Assert.Equal([ProtectErrorKind.NotMapped], r.Errors.Select(e => e.Kind));
        Assert.Contains("MAP_PRIVATE", r.Message);
    }

    [Fact]
    public void Another_file_mapped_at_the_address_is_refused()
    {
        using var rig = new Rig();
        var other = rig.K.CreateHugetlbFile(Rig.M2, Rig.M2, Rig.Pattern, "other");
        var r = rig.Agent.ProtectRange(other, rig.Base, Rig.M2);
        Assert.Equal([ProtectErrorKind.NotMapped], r.Errors.Select(e => e.Kind));
        Assert.Contains("another file", r.Message);
    }

    [Fact]
    public void A_second_protect_of_the_same_range_is_a_conflict()
    {
        using var rig = new Rig();
        Assert.True(rig.Protect().Ok);
        var r = rig.Protect();
        Assert.Equal([ProtectErrorKind.Conflict], r.Errors.Select(e => e.Kind));
        Assert.Single(rig.Agent.Regions);
    }

    [Fact]
    public void Shmem_thp_is_used_when_the_sysfs_knob_allows_it()
    {
        using var rig = new Rig(setup: k => k.ShmemEnabled = "always within_size [advise] never deny force");
        Assert.True(rig.Protect().Region!.ShmemThp);
        using var off = new Rig();
        Assert.False(off.Protect().Region!.ShmemThp);
    }

    [Theory]
    [InlineData("6.12.117+deb12-amd64", 6, 12)]
    [InlineData("6.1.0-35-amd64", 6, 1)]
    [InlineData("6.6", 6, 6)]
    public void Kernel_releases_parse_to_major_and_minor(string release, int major, int minor)
        => Assert.Equal(new Version(major, minor), Kernel.KernelCalls.ParseRelease(release));
}

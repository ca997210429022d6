using System.CommandLine;
using System.Globalization;
using HugeFault.Recovery.Kernel;

namespace HugeFault.Recovery.Demo;

/// <summary>
/// <c>HugeFault.Recovery.Demo [--page 2M|1G] [--inject madvise|corrupt-pfn] …</c>: a key-value store on a hugetlb memfd
/// that keeps running through injected memory errors (tools/realkernel/recovery.sh runs it in the guest).
/// Exit 0: recovered (or, with --expect-refusal, refused with nothing changed); 1: a check failed; 2: bad arguments; 3: setup failed.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var page = new Option<string>("--page") { Description = "Huge page size: 2M or 1G", DefaultValueFactory = _ => "2M" };
        var pages = new Option<int?>("--pages") { Description = "Huge pages in the store (default 4 for 2M, 1 for 1G)" };
        var inject = new Option<string>("--inject") { Description = "madvise (MADV_HWPOISON from a thread of the store) or corrupt-pfn (debugfs hwpoison-inject)", DefaultValueFactory = _ => "madvise" };
        var offset = new Option<string>("--offset") { Description = "Offset of the poisoned 4 KiB within the huge page (hex)", DefaultValueFactory = _ => "0x5000" };
        var target = new Option<int?>("--target-page") { Description = "Index of the first huge page to poison (default 1 for 2M, 0 for 1G)" };
        var threads = new Option<int>("--threads") { Description = "Worker threads", DefaultValueFactory = _ => 3 };
        var repeat = new Option<int>("--repeat") { Description = "Poison this many huge pages one after another (recovery time samples)", DefaultValueFactory = _ => 1 };
        var thp = new Option<string>("--shmem-thp") { Description = "Set /sys/kernel/mm/transparent_hugepage/shmem_enabled first: advise, never, or keep", DefaultValueFactory = _ => "keep" };
        var sharer = new Option<bool>("--sharer") { Description = "A second process maps the memfd too: the agent must refuse" };
        var refusal = new Option<bool>("--expect-refusal") { Description = "Protect must refuse (kernel older than 6.6) and change nothing" };
        var bench = new Option<int>("--bench-reps") { Description = "Plain-copy benchmark repetitions", DefaultValueFactory = _ => 3 };
        var runMs = new Option<int>("--run-ms") { Description = "How long workers keep running after each recovery (ms, at most)", DefaultValueFactory = _ => 1500 };
        var key = new Option<string>("--key") { Description = "Name of the run in the JSON lines", DefaultValueFactory = _ => "recovery" };
        var quiet = new Option<bool>("--quiet") { Description = "JSON lines only" };
        var noAlloc = new Option<bool>("--no-allocator") { Description = "No thread that allocates (no garbage collections during a recovery)" };
        var root = new RootCommand("A key-value store on a hugetlb memfd that survives memory errors with HugeFault.Recovery")
            { page, pages, inject, offset, target, threads, repeat, thp, sharer, refusal, bench, runMs, key, quiet, noAlloc };
        root.SetAction(pr =>
        {
            long ps = pr.GetValue(page) switch { "2M" or "2m" => 2L << 20, "1G" or "1g" => 1L << 30, _ => 0 };
            if (ps == 0) return Bad("--page must be 2M or 1G");
            if (pr.GetValue(inject) is not ("madvise" or "corrupt-pfn")) return Bad("--inject must be madvise or corrupt-pfn");
            string offText = pr.GetValue(offset)!;
            if (!long.TryParse(offText.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? offText[2..] : offText, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long off)
                || off < 0 || off >= ps || (off & 4095) != 0)
                return Bad($"--offset {offText}: give a 4 KiB-aligned hex offset below the huge page size");
            int n = pr.GetValue(pages) ?? (ps == 2L << 20 ? 4 : 1), t = pr.GetValue(target) ?? (ps == 2L << 20 ? 1 : 0), rep = pr.GetValue(repeat);
            if (n < 1 || rep < 1 || t < 0 || t + rep > n) return Bad($"--target-page {t} --repeat {rep} do not fit in --pages {n}");
            if (pr.GetValue(threads) is < 1 or > 64) return Bad("--threads must be 1 to 64");
            if (pr.GetValue(thp) is not ("advise" or "never" or "keep")) return Bad("--shmem-thp must be advise, never or keep");
            var o = new DemoOptions(pr.GetValue(key)!, ps, n, pr.GetValue(inject)!, off, t, pr.GetValue(threads), rep, pr.GetValue(thp)!,
                pr.GetValue(sharer), pr.GetValue(refusal), Math.Max(1, pr.GetValue(bench)), pr.GetValue(runMs), !pr.GetValue(noAlloc));
            var output = new Output(o.Key, KernelCalls.UnameRelease(LinuxKernel.Instance) ?? "?", pr.GetValue(quiet));
            return new DemoRun(o, output).Execute();
        });
        var path = new Argument<string>("path");
        var size = new Argument<long>("size");
        var child = new Command("sharer", "Internal: the second process of --sharer") { path, size };
        child.SetAction(pr => SharerCheck.RunChild(pr.GetValue(path)!, pr.GetValue(size)));
        root.Subcommands.Add(child);
        return root.Parse(args).Invoke();
    }

    private static int Bad(string message)
    {
        Console.Error.WriteLine("HugeFault.Recovery.Demo: " + message);
        return 2;
    }
}

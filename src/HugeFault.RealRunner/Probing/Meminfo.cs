namespace HugeFault.RealRunner.Probing;

/// <summary>The /proc/meminfo counters the model tracks (default huge page size = 2 MiB here).</summary>
internal readonly record struct Meminfo(long Total, long Free, long Rsvd, long Surp, long HardwareCorruptedKb)
{
    public static Meminfo Parse(string text)
    {
        long total = -1, free = -1, rsvd = -1, surp = -1, hwc = -1;
        foreach (var line in text.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            var key = line.AsSpan(0, colon);
            var rest = line.AsSpan(colon + 1).Trim();
            int sp = rest.IndexOf(' ');
            if (sp >= 0) rest = rest[..sp];
            if (!long.TryParse(rest, out long v)) continue;
            switch (key)
            {
                case "HugePages_Total": total = v; break;
                case "HugePages_Free": free = v; break;
                case "HugePages_Rsvd": rsvd = v; break;
                case "HugePages_Surp": surp = v; break;
                case "HardwareCorrupted": hwc = v; break;
            }
        }
        return new Meminfo(total, free, rsvd, surp, hwc);
    }
}

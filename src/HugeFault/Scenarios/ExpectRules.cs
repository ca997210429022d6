using System.Globalization;

namespace HugeFault.Scenarios;

/// <summary>
/// A number an expectation accepts when one exact value is too strict for every kernel (or peer test):
/// <c>{at_least: N}</c>, <c>{at_most: N}</c>, both, or <c>{one_of: [a, b]}</c>.
/// </summary>
public sealed record NumExpect(long? AtLeast, long? AtMost, IReadOnlyList<long>? OneOf)
{
    public bool Matches(long v) =>
        (AtLeast is not { } lo || v >= lo) && (AtMost is not { } hi || v <= hi) && (OneOf is null || OneOf.Contains(v));

    public override string ToString()
    {
        var parts = new List<string>();
        if (AtLeast is { } lo) parts.Add($"at least {lo}");
        if (AtMost is { } hi) parts.Add($"at most {hi}");
        if (OneOf is { } xs) parts.Add("one of " + string.Join(", ", xs.Select(x => x.ToString(CultureInfo.InvariantCulture))));
        return string.Join(" and ", parts);
    }
}

/// <summary>
/// kpageflags of a pfn (a saved pfn variable plus a page offset) after the step: bits that must be set and bits that
/// must be clear (names as in include/uapi/linux/kernel-page-flags.h without KPF_).
/// </summary>
public sealed record PageFlagsExpect(SourcePos Pos, string Var, long PageOffset, IReadOnlyList<string> Has, IReadOnlyList<string> Lacks)
{
    /// <summary>The flags the model knows and the real runner reads from /proc/kpageflags (bit numbers).</summary>
    public static readonly IReadOnlyDictionary<string, int> Bits = new Dictionary<string, int>
    {
        ["LOCKED"] = 0, ["DIRTY"] = 4, ["LRU"] = 5, ["BUDDY"] = 10, ["MMAP"] = 11, ["ANON"] = 12, ["COMPOUND_HEAD"] = 15,
        ["COMPOUND_TAIL"] = 16, ["HUGE"] = 17, ["HWPOISON"] = 19, ["NOPAGE"] = 20,
    };

    /// <summary>Where the pfn comes from, as written ("$p" or "$p+5").</summary>
    public string Where => PageOffset == 0 ? "$" + Var : $"${Var}+{PageOffset}";
}

/// <summary>What a pfn_of step's pfn must be against one saved earlier: changed (migrated) or the same.</summary>
public sealed record PfnExpect(SourcePos Pos, string Var, bool Changed);

/// <summary>Shared evaluation of the rule-shaped expectations, for the model's checks and for real traces.</summary>
public static class ExpectRules
{
    /// <summary>Adds a failure if <paramref name="got"/> breaks <paramref name="want"/>.</summary>
    public static void Number(string what, NumExpect? want, long got, List<string> f, string unit = "")
    {
        if (want is not null && !want.Matches(got)) f.Add($"{what}: expected {want}{unit}, got {got}{unit}");
    }

    /// <summary>Adds a failure unless <paramref name="got"/> is one of <paramref name="want"/> (null = anything).</summary>
    public static void OneOf(string what, IReadOnlyList<string>? want, string got, List<string> f, bool prefix = false)
    {
        if (want is null) return;
        if (!want.Any(w => prefix ? got.StartsWith(w, StringComparison.Ordinal) : got == w)) f.Add($"{what}: expected one of {string.Join(", ", want)}, got {got}");
    }

    /// <summary>Checks kpageflags bits (<paramref name="flags"/> null = the pfn was not read).</summary>
    public static void PageFlags(PageFlagsExpect want, ulong? flags, List<string> f)
    {
        if (flags is not { } v) { f.Add($"kpageflags {want.Where}: not read (is the variable set?)"); return; }
        foreach (var n in want.Has) if ((v >> PageFlagsExpect.Bits[n] & 1) == 0) f.Add($"kpageflags {want.Where}: {n} expected, not set (flags {Names(v)})");
        foreach (var n in want.Lacks) if ((v >> PageFlagsExpect.Bits[n] & 1) != 0) f.Add($"kpageflags {want.Where}: {n} set, expected clear (flags {Names(v)})");
    }

    /// <summary>Checks a pfn_of result against a saved pfn.</summary>
    public static void Pfn(PfnExpect want, ulong? saved, ulong got, List<string> f)
    {
        if (saved is not { } s) { f.Add($"pfn: variable ${want.Var} is not set"); return; }
        if (want.Changed && got == s) f.Add($"pfn: expected to differ from ${want.Var} ({s:x}), still {got:x}");
        if (!want.Changed && got != s) f.Add($"pfn: expected ${want.Var} ({s:x}), got {got:x}");
    }

    /// <summary>Checks who is dead and how: "SIGBUS", "SIGKILL", "exit", or "alive".</summary>
    public static void Dead(IReadOnlyDictionary<string, string>? want, Func<string, string> state, List<string> f)
    {
        foreach (var (p, how) in want ?? new Dictionary<string, string>())
        {
            string got = state(p);
            if (got != how) f.Add($"dead {p}: expected {how}, got {got}");
        }
    }

    /// <summary>The modelled kpageflags bits, by name.</summary>
    public static string Names(ulong flags) =>
        string.Join("|", PageFlagsExpect.Bits.Where(kv => (flags >> kv.Value & 1) != 0).Select(kv => kv.Key)) is { Length: > 0 } s ? s : "none";
}

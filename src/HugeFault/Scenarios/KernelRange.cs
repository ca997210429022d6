namespace HugeFault.Scenarios;

/// <summary>
/// The kernel versions a scenario's expectations hold on (its <c>kernel:</c> key), compared by series
/// (major.minor): <c>"6.6"</c> = 6.6 and later; <c>"&lt;6.6"</c> = before 6.6; <c>{min: "6.1", max: "6.5"}</c> =
/// both ends included. The oracle runs a scenario on every real kernel inside its range, and the model follows
/// that kernel (<see cref="Scenario.ForKernel"/>).
/// </summary>
public sealed record KernelRange(Version? Min, Version? Max, bool MaxExclusive = false)
{
    /// <summary>Every kernel.</summary>
    public static readonly KernelRange Any = new(null, null);

    /// <summary>The model's kernel when a scenario names none (host.kernel_version).</summary>
    public static readonly Version DefaultModel = new(6, 12);

    public bool IsAny => Min is null && Max is null;

    /// <summary>Whether kernel <paramref name="v"/> (its major.minor) lies in the range.</summary>
    public bool Contains(Version v)
    {
        var s = Series(v);
        if (Min is { } mn && s < Series(mn)) return false;
        if (Max is { } mx && (MaxExclusive ? s >= Series(mx) : s > Series(mx))) return false;
        return true;
    }

    private static Version Series(Version v) => new(v.Major, Math.Max(0, v.Minor));

    /// <summary>The model version a scenario runs at without host.kernel_version: 6.12 if in range, else the inclusive maximum, else none.</summary>
    public Version? DefaultVersion() => Contains(DefaultModel) ? DefaultModel : Max is { } mx && !MaxExclusive ? mx : null;

    public override string ToString() => (Min, Max) switch
    {
        (null, null) => "any",
        ({ } mn, null) => ">=" + mn,
        (null, { } mx) => (MaxExclusive ? "<" : "<=") + mx,
        ({ } mn, { } mx) => MaxExclusive ? $">={mn} <{mx}" : $"{mn}..{mx}",
    };

    /// <summary>Parses "6.6" (minimum), "&lt;6.6" (below), "&lt;=6.5" (at most); null if malformed.</summary>
    public static KernelRange? ParseText(string text)
    {
        text = text.Trim();
        if (text.StartsWith("<=", StringComparison.Ordinal)) return TryVersion(text[2..]) is { } a ? new KernelRange(null, a) : null;
        if (text.StartsWith('<')) return TryVersion(text[1..]) is { } b ? new KernelRange(null, b, MaxExclusive: true) : null;
        if (text.StartsWith(">=", StringComparison.Ordinal)) text = text[2..];
        return TryVersion(text) is { } c ? new KernelRange(c, null) : null;
    }

    /// <summary>A kernel version "6.1" or "6.1.192" (the sublevel is kept but ranges compare major.minor).</summary>
    public static Version? TryVersion(string? s)
    {
        if (s is null) return null;
        s = s.Trim();
        if (s.Count(c => c == '.') is < 1 or > 2) return null;
        return Version.TryParse(s, out var v) && v.Major >= 2 && v.Major < 100 ? v : null;
    }
}

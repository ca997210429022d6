using System.Globalization;

namespace HugeFault.Reports;

/// <summary>
/// The one number formatter of every report (terminal, CSV-free text, HTML, verdict sentences): binary byte units
/// (4 KiB, 1 GiB; never 1024 MiB), thousands separators, three significant digits, durations, and intervals whose
/// bounds share the mean's decimals. Culture-invariant, so output is byte-identical on every machine.
/// </summary>
public static class Fmt
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly string[] ByteUnits = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

    /// <summary>Minus sign used in reports (U+2212 reads better than '-' next to numbers).</summary>
    public const string Minus = "−";

    /// <summary>Whole counts with thousands separators: 526,342.</summary>
    public static string Count(long n) => Sign(n < 0) + Math.Abs(n).ToString("N0", Inv);

    /// <summary>
    /// Bytes in binary units: exact multiples as integers ("1 GiB", "4 KiB", "8 KiB"), anything else with three
    /// significant digits in the largest unit the value reaches after rounding ("7.88 KiB", "1.00 GiB" for 1 GiB − 64 B).
    /// </summary>
    public static string Bytes(double bytes)
    {
        if (bytes == 0) return "0";
        double a = Math.Abs(bytes);
        int u = 0;
        while (u < ByteUnits.Length - 1 && a >= 1024) { a /= 1024; u++; }
        string s;
        if (a == Math.Floor(a)) s = ((long)a).ToString("N0", Inv);
        else
        {
            s = Sig(a, 3);
            if (s == "1,024" || s == "1024") { u = Math.Min(u + 1, ByteUnits.Length - 1); s = "1.00"; }
        }
        return Sign(bytes < 0) + s + " " + ByteUnits[u];
    }

    /// <summary>A quantity already expressed in GiB, as bytes in binary units.</summary>
    public static string GiB(double gib) => Bytes(gib * (1L << 30));

    /// <summary>A quantity already expressed in KiB, as bytes in binary units.</summary>
    public static string KiB(double kib) => Bytes(kib * 1024);

    /// <summary>Nanoseconds as ns, µs, ms or s with three significant digits.</summary>
    public static string Duration(double ns)
    {
        if (ns == 0) return "0";
        double a = Math.Abs(ns);
        (double div, string unit) = a >= 1e9 ? (1e9, "s") : a >= 1e6 ? (1e6, "ms") : a >= 1e3 ? (1e3, "µs") : (1, "ns");
        return Sign(ns < 0) + Sig(a / div, 3) + " " + unit;
    }

    /// <summary>A real number with three significant digits (thousands separators above 1,000; scientific below 0.001).</summary>
    public static string Num(double x) => Num(x, 3);

    /// <summary>A real number with <paramref name="digits"/> significant digits.</summary>
    public static string Num(double x, int digits)
    {
        if (double.IsNaN(x)) return "n/a";
        if (double.IsInfinity(x)) return x > 0 ? "∞" : Minus + "∞";
        if (x == 0) return "0";
        double a = Math.Abs(x);
        if (a < 1e-3) return Sign(x < 0) + a.ToString("0.##E+0", Inv).Replace("E-", "e" + Minus).Replace("E+", "e");
        if (a == Math.Floor(a) && a < 1e15) return Count((long)x); // whole numbers print whole: "1 year", "512"
        return Sign(x < 0) + Sig(a, digits);
    }

    /// <summary>A fraction as a percentage with three significant digits: "1.36 %".</summary>
    public static string Percent(double fraction) => Num(fraction * 100) + " %";

    /// <summary>A fraction as a percentage with explicit decimals.</summary>
    public static string Percent(double fraction, int decimals) => Fixed(fraction * 100, decimals) + " %";

    /// <summary>A signed real number ("+0.083", "−2.16") with three significant digits.</summary>
    public static string Signed(double x) => x > 0 ? "+" + Num(x) : Num(x);

    /// <summary>Decimals for a mean and its interval: set by the half-width, so the digits shown are the digits known.</summary>
    public static int Decimals(double mean, double halfWidth)
    {
        double h = Math.Abs(halfWidth), m = Math.Abs(mean);
        // one or two significant digits of the half-width (two when it starts with 1 or 2); an exact value: three of the mean
        int d = h > 0 ? Math.Max(0, -(int)Math.Floor(Math.Log10(h / 3))) : m > 0 ? Math.Max(0, 2 - (int)Math.Floor(Math.Log10(m))) : 0;
        return Math.Min(d, 12);
    }

    /// <summary>"mean [lo, hi]" with shared decimals; a degenerate interval prints the mean only.</summary>
    public static string Interval(double mean, double lower, double upper, string unit = "")
    {
        string u = unit.Length > 0 ? " " + unit : "";
        if (lower == upper && lower == mean) return Fixed(mean, Decimals(mean, 0)) + u;
        int d = Decimals(mean, (upper - lower) / 2);
        return $"{Fixed(mean, d)} [{Fixed(lower, d)}, {Fixed(upper, d)}]{u}";
    }

    /// <summary>"[lo, hi]" with the decimals of <see cref="Interval"/>.</summary>
    public static string Bounds(double mean, double lower, double upper)
    {
        int d = Decimals(mean, (upper - lower) / 2);
        return $"[{Fixed(lower, d)}, {Fixed(upper, d)}]";
    }

    /// <summary>Paired difference "Δ −2.16 [−2.33, −2.00]".</summary>
    public static string Delta(double mean, double lower, double upper)
    {
        int d = Decimals(mean, (upper - lower) / 2);
        string m = mean > 0 ? "+" + Fixed(mean, d) : Fixed(mean, d);
        return $"Δ {m} [{Fixed(lower, d)}, {Fixed(upper, d)}]";
    }

    /// <summary>Fixed decimals with thousands separators and a true minus sign.</summary>
    public static string Fixed(double x, int decimals)
    {
        double r = Math.Round(x, decimals, MidpointRounding.AwayFromZero);
        if (r == 0) r = 0; // no "−0"
        return Sign(r < 0) + Math.Abs(r).ToString("N" + decimals.ToString(Inv), Inv);
    }

    /// <summary>Exact machine-readable value for CSV and JSON (round-trippable, invariant).</summary>
    public static string Raw(double x) => x.ToString("R", Inv);

    private static string Sig(double a, int digits)
    {
        int mag = (int)Math.Floor(Math.Log10(a));
        int dec = Math.Max(0, digits - 1 - mag);
        double r = Math.Round(a, dec, MidpointRounding.AwayFromZero);
        if (r > 0 && (int)Math.Floor(Math.Log10(r)) > mag) dec = Math.Max(0, dec - 1); // 9.996 → 10.0, not 10.00
        return r.ToString("N" + dec.ToString(Inv), Inv);
    }

    private static string Sign(bool negative) => negative ? Minus : "";
}

using HugeFault.Fleet;
using ScottPlot;

namespace HugeFault.Reports;

/// <summary>One chart: its file name, SVG text (for the HTML page) and PNG bytes (for files).</summary>
public sealed record Chart(string Name, string Title, string Caption, string Svg, byte[] Png);

/// <summary>
/// The fleet's charts (ScottPlot, DejaVu Sans so PNGs are byte-identical everywhere): axis labels with units, the run's
/// metadata under the title, 95 % bands and whiskers, a log axis where values span decades, legends outside the data.
/// </summary>
public static class Plots
{
    public const int Width = 900, Height = 520;
    private const double GiB = 1L << 30;

    private static Plot New(string title, string meta)
    {
        Fonts.Default = "DejaVu Sans";
        var plt = new Plot();
        plt.Title(title + "\n" + meta, size: 15);
        return plt;
    }

    private static Chart Done(Plot plt, string name, string title, string caption)
    {
        string svg = plt.GetSvgXml(Width, Height);
        byte[] png = plt.GetImageBytes(Width, Height, ImageFormat.Png);
        return new Chart(name, title, caption, svg, png);
    }

    /// <summary>All fleet charts of a report (bands may be null: then no band).</summary>
    public static List<Chart> Fleet(FleetReport r, FleetBands? bands)
    {
        var charts = new List<Chart> { StrandedOverTime(r, bands) };
        var rows = r.Rows().ToList();
        foreach (var (metric, label) in new[] { ("vm_crashes", "VM crashes"), ("stranded_gib_days", "Stranded capacity"), ("guest_memory_lost_gib", "Guest memory lost"), ("live_migrations", "Live migrations") })
        {
            var m = FleetReport.Metrics.First(x => x.Name == metric);
            var sel = r.Tally.Policies.Select(p => rows.First(x => x.Policy == p && x.Metric == metric)).ToList();
            charts.Add(CiBars(metric.Replace('_', '-'), $"{label} per policy (95 % CI)", $"{m.Label}, {m.Unit}", sel.Select(x => x.Policy).ToArray(),
                sel.Select(x => x.Value.Mean).ToArray(), sel.Select(x => x.Value.Lower).ToArray(), sel.Select(x => x.Value.Upper).ToArray(), FleetSection.Metadata(r)));
        }
        charts.Add(Footprint(r));
        return charts;
    }

    private static Chart StrandedOverTime(FleetReport r, FleetBands? bands)
    {
        string meta = FleetSection.Metadata(r);
        var plt = New("Capacity stranded over time", meta);
        var t = r.Tally;
        double binHours = r.Context.Years * 8760.0 / t.Bins;
        double k = 4096.0 / GiB / binHours * 1000; // page-hours per bin per server → GiB per 1,000 servers
        double[] xs = Enumerable.Range(0, t.Bins).Select(b => (b + 0.5) * r.Context.Years * 12 / t.Bins).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        // policies with identical series share one line (and one band), labelled with all their names
        var groups = new List<List<int>>();
        for (int p = 0; p < t.Policies.Length; p++)
        {
            var g = groups.FirstOrDefault(g => Enumerable.Range(0, t.Bins).All(b => t.Series[g[0], b] == t.Series[p, b]));
            if (g is null) groups.Add([p]); else g.Add(p);
        }
        for (int gi = 0; gi < groups.Count; gi++)
        {
            int pi = groups[gi][0];
            var color = palette.GetColor(gi);
            if (bands is not null)
            {
                var fill = plt.Add.FillY(xs, Enumerable.Range(0, t.Bins).Select(b => bands.Lower[pi, b] * k).ToArray(), Enumerable.Range(0, t.Bins).Select(b => bands.Upper[pi, b] * k).ToArray());
                fill.FillColor = color.WithAlpha(0.10);
                fill.LineColor = color.WithAlpha(0.35);
                fill.LineWidth = 1;
            }
            var sc = plt.Add.Scatter(xs, Enumerable.Range(0, t.Bins).Select(b => r.SeriesMeanGiB(pi, b) * 1000).ToArray());
            sc.Color = color;
            sc.LineWidth = 2;
            sc.MarkerSize = 5;
            sc.LegendText = string.Join(",\n", groups[gi].Select(i => t.Policies[i]));
        }
        plt.XLabel("month of the mission");
        plt.YLabel("GiB stranded per 1,000 servers (mean)");
        plt.Axes.SetLimitsY(0, double.NaN);
        plt.Axes.Margins(bottom: 0);
        plt.ShowLegend(Edge.Right);
        string caption = $"Mean stranded capacity per month with 95 % bands from {bands?.Batches ?? 0} batch means (Student t, log scale, so never below 0); {meta}.";
        return Done(plt, "stranded-over-time", "Capacity stranded over time", caption);
    }

    /// <summary>Dot-and-whisker chart: one row per label, the mean and its 95 % interval.</summary>
    public static Chart CiBars(string name, string title, string axis, string[] labels, double[] mean, double[] lo, double[] hi, string meta)
    {
        var plt = New(title, meta);
        double[] ys = Enumerable.Range(0, labels.Length).Select(i => (double)(labels.Length - 1 - i)).ToArray();
        var eb = plt.Add.ErrorBar(mean, ys, new double[labels.Length]);
        eb.YErrorPositive = null;
        eb.YErrorNegative = null;
        eb.XErrorNegative = mean.Select((m, i) => m - lo[i]).ToArray();
        eb.XErrorPositive = hi.Select((h, i) => h - mean[i]).ToArray();
        eb.LineWidth = 2;
        eb.Color = Colors.Black;
        var mk = plt.Add.Markers(mean, ys);
        mk.MarkerSize = 9;
        mk.Color = new ScottPlot.Palettes.Category10().GetColor(0);
        plt.Axes.Left.SetTicks(ys, labels);
        plt.Axes.Left.MinimumSize = 150;
        plt.XLabel(axis);
        double top = hi.DefaultIfEmpty(0).Max();
        plt.Axes.SetLimitsX(0, top > 0 ? top * 1.08 : 1);
        plt.Axes.SetLimitsY(-0.7, labels.Length - 0.3);
        return Done(plt, name, title, $"{title}: mean (dot) and 95 % interval (whisker) per policy; {meta}.");
    }

    private static Chart Footprint(FleetReport r)
    {
        var t = r.Tally;
        string meta = FleetSection.Metadata(r);
        var plt = New("UE footprint by fault mode", meta);
        var modes = Enumerable.Range(0, ServerOutcome.Modes).Where(i => t.ModePatterns[i] > 0).ToList();
        var bars = new List<Bar>();
        for (int j = 0; j < modes.Count; j++)
        {
            double v = (double)t.ModeFrames[modes[j]] / t.ModePatterns[modes[j]];
            bars.Add(new Bar { Position = j, Value = Math.Log10(Math.Max(1, v)), ValueBase = 0, FillColor = new ScottPlot.Palettes.Category10().GetColor(0), Label = v == Math.Floor(v) ? Fmt.Count((long)v) : Fmt.Num(v) });
        }
        var b = plt.Add.Bars(bars);
        b.ValueLabelStyle.FontSize = 12;
        plt.Axes.Bottom.SetTicks(Enumerable.Range(0, modes.Count).Select(i => (double)i).ToArray(), modes.Select(FleetReport.ModeName).ToArray());
        double max = bars.Count == 0 ? 1 : Math.Max(1, Math.Ceiling(bars.Max(x => x.Value) + 0.3));
        var ticks = Enumerable.Range(0, (int)max + 1).Select(i => (double)i).ToArray();
        plt.Axes.Left.SetTicks(ticks, ticks.Select(x => Fmt.Count((long)Math.Pow(10, x))).ToArray());
        plt.Axes.SetLimitsY(0, max);
        plt.YLabel("1 GiB frames per UE pattern (log scale)");
        plt.XLabel("fault mode");
        return Done(plt, "ue-footprint-by-mode", "UE footprint by fault mode",
            $"How many 1 GiB frames one uncorrectable pattern of each fault mode poisons (log scale; the label is the value); {meta}.");
    }

    /// <summary>Tornado: the headline Δ at each parameter's low and high end, around the baseline run's Δ.</summary>
    public static Chart Tornado(IReadOnlyList<(string Parameter, double Low, double High)> rows, double baseline, string axis, string meta)
    {
        var plt = New("Sensitivity of the headline Δ", meta);
        var order = rows.OrderBy(r => Math.Abs(r.High - r.Low)).ToList();
        var palette = new ScottPlot.Palettes.Category10();
        var bars = new List<Bar>();
        for (int i = 0; i < order.Count; i++)
        {
            bars.Add(new Bar { Position = i, ValueBase = baseline, Value = order[i].Low, FillColor = palette.GetColor(0) });
            bars.Add(new Bar { Position = i, ValueBase = baseline, Value = order[i].High, FillColor = palette.GetColor(1) });
        }
        var b = plt.Add.Bars(bars);
        b.Horizontal = true;
        var v = plt.Add.VerticalLine(baseline);
        v.LineColor = Colors.Black;
        v.LinePattern = LinePattern.Dashed;
        plt.Axes.Left.SetTicks(Enumerable.Range(0, order.Count).Select(i => (double)i).ToArray(), order.Select(r => r.Parameter).ToArray());
        plt.Axes.Left.MinimumSize = 260;
        plt.XLabel(axis);
        plt.Legend.ManualItems.Add(new LegendItem { LabelText = "parameter at its low end", FillColor = palette.GetColor(0) });
        plt.Legend.ManualItems.Add(new LegendItem { LabelText = "parameter at its high end", FillColor = palette.GetColor(1) });
        plt.ShowLegend(Edge.Bottom);
        return Done(plt, "tornado", "Sensitivity of the headline Δ",
            $"Tornado: {axis} when one parameter is at the low (blue) or high (orange) end of its range; dashed: the default; {meta}.");
    }
}

using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using HugeFault.Reports.Html;

namespace HugeFault.Reports.Tests;

/// <summary>
/// The HTML report opens offline in headless Chromium (Debian's package, installed by tools/chromium/install.sh):
/// every table and SVG renders with a non-empty box, nothing is fetched, nothing logs an error. Skipped, with the
/// reason, where Chromium cannot be installed.
/// </summary>
public class HtmlChromiumTests
{
    private const string SelfCheck = """
        <script>
        window.__hf={errors:[]};
        window.addEventListener('error',function(e){window.__hf.errors.push(String(e.message||(e.target&&(e.target.src||e.target.href))||'error'));},true);
        (function(){var ce=console.error;console.error=function(){window.__hf.errors.push('console.error: '+Array.prototype.join.call(arguments,' '));ce.apply(console,arguments);};})();
        window.addEventListener('load',function(){
          var details=document.querySelectorAll('details');details.forEach(function(d){d.open=true;});
          var svgs=document.querySelectorAll('svg'),empty=0;
          svgs.forEach(function(s){var r=s.getBoundingClientRect();if(r.width<4||r.height<4||s.childElementCount===0)empty++;});
          var tables=document.querySelectorAll('table');
          var emptyTables=Array.prototype.filter.call(tables,function(t){return t.rows.length<2||t.getBoundingClientRect().height<10;}).length;
          var out={details:details.length,svg:svgs.length,emptySvg:empty,tables:tables.length,emptyTables:emptyTables,
            resources:performance.getEntriesByType('resource').map(function(x){return x.name;}),errors:window.__hf.errors};
          var p=document.createElement('pre');p.id='hf-selfcheck';p.textContent=JSON.stringify(out);document.body.appendChild(p);
        });
        </script>
        """;

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "HugeFault.slnx"))) return d.FullName;
        throw new InvalidOperationException("repository root not found");
    }

    private static (int Exit, string Out, string Err) Run(string file, IEnumerable<string> args, int timeoutMs)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs)) { try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } return (-1, o.IsCompleted ? o.Result : "", "timed out"); }
        return (p.ExitCode, o.Result, e.Result);
    }

    private static readonly Lazy<string?> Chromium = new(() =>
    {
        string script = Path.Combine(RepoRoot(), "tools", "chromium", "install.sh");
        var (exit, stdout, stderr) = Run("timeout", ["600", "bash", script], 620_000);
        string path = stdout.Trim().Split('\n').LastOrDefault()?.Trim() ?? "";
        return exit == 0 && File.Exists(path) ? path : null;
    });

    private static string[] Flags(string profile) =>
        ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", $"--user-data-dir={profile}"];

    private static string Chrome()
    {
        var c = Chromium.Value;
        if (c is null) Assert.Skip("Chromium could not be installed here (tools/chromium/install.sh failed: no apt access or not root); the HTML rendering test needs it");
        return c!;
    }

    /// <summary>Loads the page with the self-check injected and returns what it found.</summary>
    private static JsonElement Check(string html)
    {
        string dir = Directory.CreateTempSubdirectory("hugefault-html-").FullName;
        string page = Path.Combine(dir, "page.html");
        File.WriteAllText(page, html.Replace("<head>", "<head>" + SelfCheck, StringComparison.Ordinal));
        var (exit, dom, err) = Run(Chrome(), [.. Flags(Path.Combine(dir, "profile")), "--virtual-time-budget=15000", "--dump-dom", "file://" + page], 180_000);
        Assert.True(exit == 0, $"chromium exit {exit}: {err}");
        var m = Regex.Match(dom, "<pre id=\"hf-selfcheck\">(.*?)</pre>", RegexOptions.Singleline);
        Assert.True(m.Success, "the self-check did not run; DOM starts: " + dom[..Math.Min(300, dom.Length)]);
        return JsonDocument.Parse(System.Net.WebUtility.HtmlDecode(m.Groups[1].Value)).RootElement.Clone();
    }

    [Fact]
    public void The_compare_report_is_one_file_without_external_references()
    {
        string html = HtmlReport.Compare(Small.Compare);
        string withoutNamespaces = Regex.Replace(html, "xmlns(:\\w+)?=\"[^\"]*\"", "");
        // only in-page references (#id) are allowed
        Assert.DoesNotMatch("(?i)(src|href)\\s*=\\s*\"[^#]|url\\((?!#)|@import|<script|<link|<img|https?://", withoutNamespaces);
        Assert.Contains("<h2 id=\"verdict\">Verdict</h2>", html);
        Assert.True(Regex.Matches(html, "<svg").Count >= 10);
    }

    [Fact]
    public void The_compare_report_renders_every_table_and_plot_in_headless_chromium()
    {
        string html = HtmlReport.Compare(Small.Compare);
        var r = Check(html);
        Assert.Equal(0, r.GetProperty("errors").GetArrayLength());
        Assert.Equal(0, r.GetProperty("resources").GetArrayLength());
        Assert.True(r.GetProperty("svg").GetInt32() >= 10, r.ToString());
        Assert.Equal(0, r.GetProperty("emptySvg").GetInt32());
        Assert.Equal(Regex.Matches(html, "<table>").Count, r.GetProperty("tables").GetInt32());
        Assert.Equal(0, r.GetProperty("emptyTables").GetInt32()); // with every collapsible section opened
        Assert.True(r.GetProperty("details").GetInt32() >= 1, r.ToString());

        // and a screenshot of it is a real picture
        string dir = Directory.CreateTempSubdirectory("hugefault-shot-").FullName;
        string page = Path.Combine(dir, "report.html"), png = Path.Combine(dir, "report.png");
        File.WriteAllText(page, html);
        var (exit, _, err) = Run(Chrome(), [.. Flags(Path.Combine(dir, "profile")), "--window-size=1400,2000", $"--screenshot={png}", "file://" + page], 180_000);
        Assert.True(exit == 0 && File.Exists(png), $"screenshot failed: {err}");
        Assert.True(new FileInfo(png).Length > 50_000, "the screenshot is nearly blank");
        if (Environment.GetEnvironmentVariable("HUGEFAULT_SCREENSHOT") is { Length: > 0 } keep) File.Copy(png, keep, overwrite: true);
    }

    [Fact]
    public void The_check_detects_a_broken_page()
    {
        string broken = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body><table><tr><td>x</td></tr></table>" +
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"0\" height=\"0\"></svg><img src=\"missing.png\">" +
                        "<script>undefinedFunction();</script></body></html>";
        var r = Check(broken);
        Assert.True(r.ToString().Length > 0, r.ToString());
        Assert.True(r.GetProperty("errors").GetArrayLength() >= 2, r.ToString()); // the missing image and the script error
        Assert.True(r.GetProperty("emptySvg").GetInt32() == 1, r.ToString());
        Assert.True(r.GetProperty("emptyTables").GetInt32() == 1, r.ToString());
    }
}

using System.Text;
using System.Text.RegularExpressions;

namespace HugeFault.Tests.Cli;

/// <summary>
/// The README's example blocks are the tool's real output: each block between
/// <c>&lt;!-- hugefault: [COLUMNS=N] [HEAD=K] [UNTIL=PREFIX] ARGS --&gt;</c> and <c>&lt;!-- /hugefault --&gt;</c> must equal what
/// <c>hugefault ARGS</c> prints (piped, COLUMNS=N, first K lines, up to the first line starting with PREFIX). <c>tools/readme.sh</c> rewrites them
/// (it runs this test with HUGEFAULT_README_WRITE=1).
/// </summary>
public class ReadmeTests
{
    private static readonly Regex Block = new(@"<!-- hugefault: (?<spec>[^>]*?) -->\n(?<body>.*?)<!-- /hugefault -->", RegexOptions.Singleline);

    private static string Render(string spec)
    {
        var words = spec.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        var env = new Dictionary<string, string>();
        int head = int.MaxValue;
        string? until = null;
        while (words.Count > 0 && words[0].Contains('='))
        {
            var (k, v) = (words[0][..words[0].IndexOf('=')], words[0][(words[0].IndexOf('=') + 1)..]);
            if (k == "HEAD") head = int.Parse(v, System.Globalization.CultureInfo.InvariantCulture);
            else if (k == "UNTIL") until = v;
            else env[k] = v;
            words.RemoveAt(0);
        }
        var (exit, stdout, stderr) = CliProcess.InProcess(env, words.ToArray());
        Assert.True(exit == 0, $"hugefault {spec}: exit {exit}: {stderr}");
        var lines = stdout.Replace("\r", "").TrimEnd('\n').Split('\n').Take(head).TakeWhile(l => until is null || !l.StartsWith(until, StringComparison.Ordinal)).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return "```\n" + string.Join("\n", lines) + "\n```\n";
    }

    [Fact]
    public void The_readme_examples_are_what_the_tool_prints()
    {
        string path = Path.Combine(CliProcess.RepoRoot(), "README.md");
        string readme = File.ReadAllText(path);
        var blocks = Block.Matches(readme).ToList();
        Assert.True(blocks.Count >= 3, "README lost its generated blocks");
        var rendered = blocks.AsParallel().AsOrdered().WithDegreeOfParallelism(2).Select(m => (m, text: Render(m.Groups["spec"].Value))).ToList();
        if (Environment.GetEnvironmentVariable("HUGEFAULT_README_WRITE") == "1")
        {
            var sb = new StringBuilder();
            int at = 0;
            foreach (var (m, text) in rendered)
            {
                var body = m.Groups["body"];
                sb.Append(readme, at, body.Index - at).Append(text);
                at = body.Index + body.Length;
            }
            sb.Append(readme, at, readme.Length - at);
            File.WriteAllText(path, sb.ToString());
            return;
        }
        foreach (var (m, text) in rendered)
            Assert.True(m.Groups["body"].Value == text, $"README block 'hugefault {m.Groups["spec"].Value}' differs from the tool's output; run tools/readme.sh");
    }

    private static readonly Regex MdLink = new(@"\]\((?<target>[^)\s]+)\)");
    private static readonly Regex CodePath = new(@"`(?<path>(?:docs|src|tests|tools|scenarios|bench|\.ci)/[^`\s*]+)`");
    private static readonly Regex SectionNumber = new(@"\.md §\d");

    /// <summary>GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.</summary>
    public static string Slug(string heading) =>
        new string(heading.Trim().ToLowerInvariant().Where(c => char.IsLetterOrDigit(c) || c is ' ' or '-' or '_').ToArray()).Replace(' ', '-');

    [Fact]
    public void Every_link_in_the_readme_and_docs_resolves_inside_the_repository()
    {
        string root = CliProcess.RepoRoot();
        var broken = new List<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(root, "docs"), "*.md").Append(Path.Combine(root, "README.md")))
        {
            string text = File.ReadAllText(f), dir = Path.GetDirectoryName(f)!, name = Path.GetRelativePath(root, f);
            foreach (Match m in MdLink.Matches(text))
            {
                string target = m.Groups["target"].Value;
                if (target.StartsWith("http://", StringComparison.Ordinal) || target.StartsWith("https://", StringComparison.Ordinal)) continue;
                string file = target.Split('#')[0], anchor = target.Contains('#') ? target[(target.IndexOf('#') + 1)..] : "";
                string full = file.Length == 0 ? f : Path.GetFullPath(Path.Combine(dir, file));
                if (!full.StartsWith(root, StringComparison.Ordinal) || !(File.Exists(full) || Directory.Exists(full))) { broken.Add($"{name}: ({target}) does not exist"); continue; }
                if (anchor.Length > 0 && !File.ReadAllLines(full).Where(l => l.StartsWith('#')).Select(l => Slug(l.TrimStart('#').Replace("`", ""))).Contains(anchor))
                    broken.Add($"{name}: ({target}) has no heading with that anchor");
            }
            foreach (Match m in CodePath.Matches(text))
            {
                string path = m.Groups["path"].Value.TrimEnd('.', ',', ':');
                // tools/testing/selftests/… is the kernel's tree, not ours: a tools/ path counts when its folder is one of ours
                if (path.StartsWith("tools/", StringComparison.Ordinal) && !Directory.Exists(Path.Combine(root, "tools", path.Split('/')[1])) && path.Split('/').Length > 2) continue;
                if (!File.Exists(Path.Combine(root, path)) && !Directory.Exists(Path.Combine(root, path))) broken.Add($"{name}: `{path}` does not exist");
            }
            foreach (Match m in SectionNumber.Matches(text)) broken.Add($"{name}: '{m.Value}…' cites a section by number; link its heading instead");
        }
        Assert.True(broken.Count == 0, string.Join("\n", broken));
    }

    [Fact]
    public void The_docs_stand_alone()
    {
        string root = CliProcess.RepoRoot();
        foreach (var f in Directory.GetFiles(Path.Combine(root, "docs"), "*.md").Append(Path.Combine(root, "README.md")))
            Assert.DoesNotContain("../shared", File.ReadAllText(f));
        foreach (var doc in new[] { "design-debate.md", "mainline-behaviour.md", "fault-model.md" })
            Assert.True(File.Exists(Path.Combine(root, "docs", doc)), doc);
    }
}

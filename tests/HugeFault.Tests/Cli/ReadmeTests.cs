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
        var (exit, stdout, stderr) = CliProcess.Run(env, words.ToArray());
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

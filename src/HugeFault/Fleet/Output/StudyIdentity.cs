using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace HugeFault.Fleet.Output;

/// <summary>
/// What makes two fleet runs parts of one study: every field of the fully resolved <see cref="FleetConfig"/> (seed,
/// servers, years, policies, policy parameters, hardware, faults, workload, guests) and the tool version, as sorted
/// <c>key = value</c> pairs; <see cref="Id"/> is the first 12 hex digits of their SHA-256. Shard K/N is not part of it.
/// </summary>
/// <param name="Id">12 hex digits naming the study (in file names and stamps).</param>
/// <param name="Fields">The resolved configuration and tool version, sorted by key (YAML key paths: <c>faults.scrub_hours</c>).</param>
public sealed record StudyIdentity(string Id, IReadOnlyList<KeyValuePair<string, string>> Fields)
{
    /// <summary>The version of the tool that simulated (the assembly's informational version, with its commit when built from git).</summary>
    public static string ToolVersion { get; } =
        typeof(FleetConfig).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>The identity of a study run with <paramref name="config"/> by <paramref name="toolVersion"/> (default: this build).</summary>
    public static StudyIdentity Of(FleetConfig config, string? toolVersion = null)
    {
        var fields = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Flatten(config, "", fields);
        fields["tool_version"] = toolVersion ?? ToolVersion;
        return FromFields(fields);
    }

    /// <summary>The identity of stored fields (a shard file's stamp); the id is recomputed, so an edited stamp is caught.</summary>
    public static StudyIdentity FromFields(IEnumerable<KeyValuePair<string, string>> fields)
    {
        var sorted = fields.OrderBy(f => f.Key, StringComparer.Ordinal).ToList();
        var text = new StringBuilder();
        foreach (var (k, v) in sorted) text.Append(k).Append(" = ").Append(v).Append('\n');
        string id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..12];
        return new StudyIdentity(id, sorted);
    }

    public string? this[string key] => Fields.FirstOrDefault(f => f.Key == key).Value;

    /// <summary>The keys whose values differ from <paramref name="other"/>'s (either side missing counts), "key (this vs other)".</summary>
    public IReadOnlyList<string> Differences(StudyIdentity other)
    {
        var a = Fields.ToDictionary(f => f.Key, f => f.Value);
        var b = other.Fields.ToDictionary(f => f.Key, f => f.Value);
        return a.Keys.Union(b.Keys).Order(StringComparer.Ordinal)
            .Where(k => !a.TryGetValue(k, out var x) || !b.TryGetValue(k, out var y) || x != y)
            .Select(k => $"{k} ({(a.TryGetValue(k, out var x) ? x : "absent")} vs {(b.TryGetValue(k, out var y) ? y : "absent")})")
            .ToList();
    }

    // Every init-settable property of the config records, recursively: a field added to FleetConfig joins the identity
    // without a change here. Keys are snake_case property paths (the YAML's names for the common fields).
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "the values are this assembly's config records; a trimmed or Native AOT HugeFault.Cli roots this assembly (TrimmerRootAssembly), so their properties stay")]
    private static void Flatten(object? value, string prefix, SortedDictionary<string, string> into)
    {
        if (value is null) { into[prefix] = "none"; return; }
        var type = value.GetType();
        if (IsScalar(type)) { into[prefix] = Scalar(value); return; }
        if (value is IDictionary dict)
        {
            if (dict.Count == 0) into[prefix] = "{}";
            foreach (var e in dict.Cast<DictionaryEntry>().OrderBy(e => Scalar(e.Key), StringComparer.Ordinal))
                Flatten(e.Value, $"{prefix}.{Scalar(e.Key)}", into);
            return;
        }
        if (value is IEnumerable list)
        {
            into[prefix] = "[" + string.Join(", ", list.Cast<object?>().Select(Element)) + "]";
            return;
        }
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetIndexParameters().Length == 0))
            Flatten(p.GetValue(value), prefix.Length == 0 ? Snake(p.Name) : $"{prefix}.{Snake(p.Name)}", into);
    }

    private static string Element(object? v) => v switch
    {
        null => "none",
        ITuple t => "(" + string.Join(", ", Enumerable.Range(0, t.Length).Select(i => Element(t[i]))) + ")",
        _ => Scalar(v),
    };

    private static bool IsScalar(Type t) => t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal);

    private static string Scalar(object v) => v switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        Enum e => Snake(e.ToString()),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    /// <summary>PascalCase → snake_case (<c>ScrubHours</c> → <c>scrub_hours</c>, <c>User4kGiB</c> → <c>user4k_gib</c>).</summary>
    public static string Snake(string name)
    {
        name = name.Replace("GiB", "Gib", StringComparison.Ordinal).Replace("KiB", "Kib", StringComparison.Ordinal);
        var s = new StringBuilder();
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            bool boundary = i > 0 && char.IsUpper(c) && (char.IsLower(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1]) && char.IsUpper(name[i - 1])));
            if (boundary) s.Append('_');
            s.Append(char.ToLowerInvariant(c));
        }
        return s.ToString();
    }
}

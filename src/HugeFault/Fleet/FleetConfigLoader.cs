using System.Globalization;
using HugeFault.Fleet.Dram;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace HugeFault.Fleet;

/// <summary>
/// Reads a fleet YAML file into a <see cref="FleetConfig"/>. Every problem — syntax, unknown key, wrong type, invalid
/// value — becomes one <c>file:line:column: message</c> line, all of them at once; nothing throws for bad input.
/// Keys not given keep the defaults of docs/fleet.md.
/// </summary>
public static class FleetConfigLoader
{
    private delegate FleetConfig Setter(FleetConfig c, YamlNode node, Action<string> error);

    private static readonly Dictionary<string, Setter> Keys = new()
    {
        ["server.sockets"] = (c, n, e) => c with { Server = c.Server with { Sockets = Int(n, e) } },
        ["server.channels_per_socket"] = (c, n, e) => c with { Server = c.Server with { ChannelsPerSocket = Int(n, e) } },
        ["server.dimms_per_channel"] = (c, n, e) => c with { Server = c.Server with { DimmsPerChannel = Int(n, e) } },
        ["server.ranks_per_dimm"] = (c, n, e) => c with { Server = c.Server with { RanksPerDimm = Int(n, e) } },
        ["server.chip_width"] = (c, n, e) => c with { Server = c.Server with { ChipWidth = Int(n, e) } },
        ["server.chips_per_rank"] = (c, n, e) => c with { Server = c.Server with { ChipsPerRank = Int(n, e) } },
        ["server.banks"] = (c, n, e) => c with { Server = c.Server with { Banks = Int(n, e) } },
        ["server.rows"] = (c, n, e) => c with { Server = c.Server with { Rows = Int(n, e) } },
        ["server.columns"] = (c, n, e) => c with { Server = c.Server with { Columns = Int(n, e) } },
        ["server.ecc"] = (c, n, e) => c with { Server = c.Server with { Ecc = Ecc(n, e) } },
        ["server.weakened_ecc"] = (c, n, e) => c with { Server = c.Server with { WeakenedEcc = Dbl(n, e) } },
        ["server.lane_fault_multichip"] = (c, n, e) => c with { Server = c.Server with { LaneFaultIsMultiChip = Bool(n, e) } },
        ["server.address_map.order"] = (c, n, e) => c with { Server = c.Server with { AddressOrder = List(n, e) } },
        ["server.address_map.xor_bank_with_row"] = (c, n, e) => c with { Server = c.Server with { XorBankWithRow = Bool(n, e) } },
        ["faults.profile"] = (c, n, e) => c with { Faults = c.Faults with { Profile = Str(n, e) } },
        ["faults.fit_scale"] = (c, n, e) => c with { Faults = c.Faults with { FitScale = Dbl(n, e) } },
        ["faults.heterogeneity.kind"] = (c, n, e) => c with { Faults = c.Faults with { Heterogeneity = Het(n, e) } },
        ["faults.heterogeneity.parameter"] = (c, n, e) => c with { Faults = c.Faults with { HeterogeneityParameter = Dbl(n, e) } },
        ["faults.scrub_hours"] = (c, n, e) => c with { Faults = c.Faults with { ScrubHours = Dbl(n, e) } },
        ["faults.scrub_reports_ue"] = (c, n, e) => c with { Faults = c.Faults with { ScrubReportsUe = Bool(n, e) } },
        ["faults.deposited_per_server_year"] = (c, n, e) => c with { Faults = c.Faults with { DepositedPerServerYear = Dbl(n, e) } },
        ["faults.replacement.policy"] = (c, n, e) => c with { Faults = c.Faults with { Replacement = Repl(n, e) } },
        ["faults.replacement.after_ues"] = (c, n, e) => c with { Faults = c.Faults with { ReplaceAfterUes = Int(n, e) } },
        ["faults.replacement.delay_hours"] = (c, n, e) => c with { Faults = c.Faults with { RepairDelayHours = Dbl(n, e) } },
        ["workload.kernel_gib"] = (c, n, e) => c with { Workload = c.Workload with { KernelGiB = Int(n, e) } },
        ["workload.user_4k_gib"] = (c, n, e) => c with { Workload = c.Workload with { User4kGiB = Int(n, e) } },
        ["workload.pool_occupancy"] = (c, n, e) => c with { Workload = c.Workload with { PoolOccupancy = Dbl(n, e) } },
        ["workload.vm_sizes"] = (c, n, e) => c with { Workload = c.Workload with { VmSizes = Sizes(n, e) } },
        ["workload.vm_lifetime_days"] = (c, n, e) => c with { Workload = c.Workload with { VmLifetimeDays = Dbl(n, e) } },
        ["workload.touches_per_line_hour"] = (c, n, e) => c with { Workload = c.Workload with { TouchesPerLineHour = Dbl(n, e) } },
        ["workload.hotness_sigma"] = (c, n, e) => c with { Workload = c.Workload with { HotnessSigma = Dbl(n, e) } },
        ["workload.mappings_per_page"] = (c, n, e) => c with { Workload = c.Workload with { MappingsPerPage = Int(n, e) } },
        ["guest.guest_kernel_fraction"] = (c, n, e) => c with { Guest = c.Guest with { GuestKernelFraction = Dbl(n, e) } },
        ["guest.enlightened_fraction"] = (c, n, e) => c with { Guest = c.Guest with { EnlightenedFraction = Dbl(n, e) } },
        ["guest.max_mces"] = (c, n, e) => c with { Guest = c.Guest with { MaxMces = Int(n, e) } },
        ["guest.mce_window_s"] = (c, n, e) => c with { Guest = c.Guest with { MceWindowSeconds = Dbl(n, e) } },
        ["run.servers"] = (c, n, e) => c with { Servers = Long(n, e) },
        ["run.years"] = (c, n, e) => c with { Years = Dbl(n, e) },
        ["run.seed"] = (c, n, e) => c with { Seed = ULong(n, e) },
        ["run.policies"] = (c, n, e) => c with { Policies = List(n, e) },
    };

    private static readonly HashSet<string> Sections = Keys.Keys.SelectMany(Prefixes).Append(PolicyParamsSection).ToHashSet();

    /// <summary><c>policy_params: {NAME: {KEY: VALUE}}</c>: a policy's kernel-model parameters, passed as they are.</summary>
    private const string PolicyParamsSection = "policy_params";

    /// <summary>
    /// Keys of earlier versions that no longer mean anything, matched by shape (they named designs): the VM-death
    /// probabilities of one design (<c>guest.*_kill_on_*</c>) and a design's fallback (<c>guest.NAME_fallback</c>).
    /// </summary>
    private static string? Removed(string path)
    {
        if (path.StartsWith("guest.", StringComparison.Ordinal) && path.Contains("_kill_on_", StringComparison.Ordinal))
            return $"{path} was removed: a VM's death now comes from the VM model (machine checks on guest-kernel pages, more than guest.max_mces within guest.mce_window_s, touching memory the host took away); set guest.guest_kernel_fraction, guest.max_mces or guest.mce_window_s instead (docs/fleet.md, VM fate)";
        if (path.StartsWith("guest.", StringComparison.Ordinal) && path.EndsWith("_fallback", StringComparison.Ordinal))
        {
            string policy = path["guest.".Length..^"_fallback".Length].Replace('_', '-');
            if (FleetPolicies.TryParse(policy, out _))
                return $"{path} was replaced by policy_params.{policy}.fallback (a policy's parameters go to its kernel model as they are)";
        }
        return null;
    }

    private static IEnumerable<string> Prefixes(string key)
    {
        for (int i = key.IndexOf('.'); i >= 0; i = key.IndexOf('.', i + 1)) yield return key[..i];
    }

    /// <summary>Known dotted key paths (for documentation and tests).</summary>
    public static IEnumerable<string> KnownKeys => Keys.Keys;

    /// <summary>Parses and validates <paramref name="text"/>; <paramref name="file"/> names it in messages.</summary>
    public static (FleetConfig? Config, IReadOnlyList<string> Errors) Load(string text, string file)
    {
        var errors = new List<string>();
        var lines = new Dictionary<string, Mark>();
        var config = new FleetConfig();
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            errors.Add($"{file}:{ex.Start.Line}:{ex.Start.Column}: YAML syntax error: {ex.InnerException?.Message ?? ex.Message}");
            return (null, errors);
        }
        if (stream.Documents.Count == 0) return Validate(config, file, lines, errors);
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            var s = stream.Documents[0].RootNode.Start;
            errors.Add($"{file}:{s.Line}:{s.Column}: the file must be a mapping with sections server, faults, workload, guest, policy_params, run");
            return (null, errors);
        }
        Walk(root, "", ref config, file, lines, errors);
        return Validate(config, file, lines, errors);
    }

    private static void Walk(YamlMappingNode node, string prefix, ref FleetConfig config, string file, Dictionary<string, Mark> lines, List<string> errors)
    {
        foreach (var (k, v) in node.Children)
        {
            string key = (k as YamlScalarNode)?.Value ?? "";
            string path = prefix.Length == 0 ? key : prefix + "." + key;
            lines[path] = k.Start;
            if (prefix == PolicyParamsSection)
            {
                config = PolicyParams(config, key, v, file, errors);
                continue;
            }
            if (Keys.TryGetValue(path, out var set))
            {
                string at = $"{file}:{v.Start.Line}:{v.Start.Column}";
                config = set(config, v, msg => errors.Add($"{at}: {path} {msg}"));
            }
            else if (Sections.Contains(path))
            {
                if (v is YamlMappingNode m) Walk(m, path, ref config, file, lines, errors);
                else errors.Add($"{file}:{v.Start.Line}:{v.Start.Column}: {path} must be a mapping");
            }
            else if (Removed(path) is { } why) errors.Add($"{file}:{k.Start.Line}:{k.Start.Column}: {why}");
            else
            {
                string hint = Suggest(path);
                errors.Add($"{file}:{k.Start.Line}:{k.Start.Column}: unknown key '{path}'{hint}");
            }
        }
    }

    private static FleetConfig PolicyParams(FleetConfig config, string policy, YamlNode node, string file, List<string> errors)
    {
        string at = $"{file}:{node.Start.Line}:{node.Start.Column}";
        if (node is not YamlMappingNode m)
        {
            errors.Add($"{at}: {PolicyParamsSection}.{policy} must map parameter names to values, e.g. {{KEY: VALUE}}");
            return config;
        }
        var pp = new Dictionary<string, string>();
        foreach (var (k, v) in m.Children)
        {
            string key = (k as YamlScalarNode)?.Value ?? "";
            if (v is YamlScalarNode { Value: { } value }) pp[key] = value;
            else errors.Add($"{file}:{v.Start.Line}:{v.Start.Column}: {PolicyParamsSection}.{policy}.{key} must be a single value");
        }
        var all = new Dictionary<string, IReadOnlyDictionary<string, string>>(config.PolicyParams) { [policy] = pp };
        return config with { PolicyParams = all };
    }

    private static string Suggest(string path)
    {
        static string Norm(string k) => k[(k.LastIndexOf('.') + 1)..].Replace("_", "").Replace("-", "").ToLowerInvariant();
        string leaf = Norm(path);
        string? near = Keys.Keys.Concat(Sections).FirstOrDefault(k => Norm(k) == leaf);
        return near is not null ? $"; did you mean '{near}'?" : "; see docs/fleet.md for the keys";
    }

    private static (FleetConfig?, IReadOnlyList<string>) Validate(FleetConfig config, string file, Dictionary<string, Mark> lines, List<string> errors)
    {
        if (errors.Count > 0) return (null, errors);
        foreach (var e in config.Validate())
        {
            var mark = Find(lines, e.Path);
            errors.Add(mark is { } m ? $"{file}:{m.Line}:{m.Column}: {e.Path} {e.Message}" : $"{file}:1:1: {e.Path} {e.Message} (default value)");
        }
        return errors.Count > 0 ? (null, errors) : (config, errors);
    }

    private static Mark? Find(Dictionary<string, Mark> lines, string path)
    {
        for (string p = path; p.Length > 0; p = p.Contains('.') ? p[..p.LastIndexOf('.')] : "")
            if (lines.TryGetValue(p, out var m)) return m;
        return null;
    }

    // ---- scalar readers: report and return a harmless default on error

    private static string? Scalar(YamlNode n, Action<string> error, string what)
    {
        if (n is YamlScalarNode s && s.Value is not null) return s.Value;
        error($"must be {what}");
        return null;
    }

    private static int Int(YamlNode n, Action<string> e)
    {
        string? s = Scalar(n, e, "an integer");
        if (s is null) return 0;
        if (int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v)) return v;
        e($"must be an integer (got '{s}')");
        return 0;
    }

    private static long Long(YamlNode n, Action<string> e)
    {
        string? s = Scalar(n, e, "a whole number");
        if (s is null) return 0;
        if (long.TryParse(s.Replace("_", ""), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v)) return v;
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e18) return (long)d;
        e($"must be a whole number (got '{s}')");
        return 0;
    }

    private static ulong ULong(YamlNode n, Action<string> e)
    {
        string? s = Scalar(n, e, "an unsigned integer");
        if (s is null) return 0;
        if (ulong.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong v)) return v;
        e($"must be an unsigned 64-bit integer (got '{s}')");
        return 0;
    }

    private static double Dbl(YamlNode n, Action<string> e)
    {
        string? s = Scalar(n, e, "a number");
        if (s is null) return double.NaN;
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)) return v;
        e($"must be a number (got '{s}')");
        return double.NaN;
    }

    private static bool Bool(YamlNode n, Action<string> e)
    {
        string? s = Scalar(n, e, "true or false");
        if (s is "true" or "yes" or "on") return true;
        if (s is "false" or "no" or "off") return false;
        if (s is not null) e($"must be true or false (got '{s}')");
        return false;
    }

    private static string Str(YamlNode n, Action<string> e) => Scalar(n, e, "a string") ?? "";

    private static List<string> List(YamlNode n, Action<string> e)
    {
        if (n is YamlSequenceNode seq) return seq.Children.Select(c => (c as YamlScalarNode)?.Value ?? "").ToList();
        if (n is YamlScalarNode s && s.Value is not null) return s.Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
        e("must be a list");
        return [];
    }

    private static List<(int, double)> Sizes(YamlNode n, Action<string> e)
    {
        var list = new List<(int, double)>();
        if (n is not YamlMappingNode m)
        {
            e("must map sizes in GiB to weights, e.g. {4: 0.3, 8: 0.3, 16: 0.4}");
            return list;
        }
        foreach (var (k, v) in m.Children)
        {
            string ks = (k as YamlScalarNode)?.Value ?? "";
            string vs = (v as YamlScalarNode)?.Value ?? "";
            if (!int.TryParse(ks, NumberStyles.Integer, CultureInfo.InvariantCulture, out int g) ||
                !double.TryParse(vs, NumberStyles.Float, CultureInfo.InvariantCulture, out double w))
            {
                e($"entry '{ks}: {vs}' must be '<GiB>: <weight>'");
                continue;
            }
            list.Add((g, w));
        }
        return list;
    }

    private static EccScheme Ecc(YamlNode n, Action<string> e)
    {
        string? s = Scalar(n, e, "none, secded, chipkill or adddc");
        switch (s)
        {
            case "none": return EccScheme.None;
            case "secded" or "sec-ded": return EccScheme.SecDed;
            case "chipkill" or "sddc": return EccScheme.Chipkill;
            case "adddc": return EccScheme.Adddc;
            case null: return EccScheme.Chipkill;
            default: e($"must be none, secded, chipkill or adddc (got '{s}')"); return EccScheme.Chipkill;
        }
    }

    private static Heterogeneity Het(YamlNode n, Action<string> e)
    {
        string? s = Scalar(n, e, "none, lognormal or gamma");
        switch (s)
        {
            case "none": return Heterogeneity.None;
            case "lognormal": return Heterogeneity.LogNormal;
            case "gamma": return Heterogeneity.Gamma;
            case null: return Heterogeneity.LogNormal;
            default: e($"must be none, lognormal or gamma (got '{s}')"); return Heterogeneity.LogNormal;
        }
    }

    private static ReplacementPolicy Repl(YamlNode n, Action<string> e)
    {
        string? s = Scalar(n, e, "never or after-ues");
        switch (s)
        {
            case "never": return ReplacementPolicy.Never;
            case "after-ues" or "after-first-ue": return ReplacementPolicy.AfterUes;
            case null: return ReplacementPolicy.AfterUes;
            default: e($"must be never or after-ues (got '{s}')"); return ReplacementPolicy.AfterUes;
        }
    }
}

namespace HugeFault.Policies;

/// <summary>
/// Everything the tool knows about a policy besides its behaviour, declared next to that behaviour in the policy's own
/// file (a <c>public static readonly PolicyDescriptor</c> field; <see cref="RecoveryPolicies"/> finds them): the name
/// used in scenarios and on the command line, a one-line summary, where the design comes from (<see cref="Provenance"/>),
/// the <c>policy_params</c> it takes beyond <c>report</c>, when it falls back to another path, and how to make one.
/// </summary>
/// <param name="Name">The name used in scenarios, on the command line and in reports.</param>
/// <param name="Summary">One line for <c>hugefault list</c> and the report.</param>
/// <param name="Make">Makes the policy from a scenario's <c>policy_params</c>.</param>
/// <param name="Provenance">"mainline …" (Linux today), "as posted: …" (a series' own code and selftest),
/// "extrapolation: …" (a design its authors described but never posted), or a design sketch.</param>
/// <param name="Parameters">The <c>policy_params</c> it takes beyond <c>report</c> (scenarios are checked against them).</param>
/// <param name="FallsBackWhen">When the design cannot act and another path decides (null: never).</param>
public sealed record PolicyDescriptor(
    string Name,
    string Summary,
    Func<IReadOnlyDictionary<string, string>, IRecoveryPolicy> Make,
    string Provenance = PolicyDescriptor.DesignSketch,
    IReadOnlyList<PolicyParameter>? Parameters = null,
    string? FallsBackWhen = null)
{
    /// <summary>The provenance of a design with no patch series behind it.</summary>
    public const string DesignSketch = "design sketch (no patch series)";

    /// <summary>Modelled as its authors intended, beyond what they posted.</summary>
    public bool Extrapolation => Provenance.StartsWith("extrapolation", StringComparison.Ordinal);
}

/// <summary>What values a policy parameter takes.</summary>
public enum ParameterKind
{
    /// <summary>Any text.</summary>
    Text,
    /// <summary>true or false.</summary>
    Bool,
    /// <summary>One of <see cref="PolicyParameter.Choices"/>.</summary>
    Choice,
    /// <summary>A finite number above zero.</summary>
    PositiveNumber,
    /// <summary>The name of another policy (which gets the same parameters).</summary>
    Policy,
}

/// <summary>One policy parameter (a scenario's <c>host.policy_params</c> key), its default, meaning and the values it takes.</summary>
public sealed record PolicyParameter(string Name, string Default, string Description, ParameterKind Kind = ParameterKind.Text, IReadOnlyList<string>? Choices = null);

/// <summary>
/// A policy's description for listings and reports: <c>FallsBackWhen</c> says when the design cannot act and another
/// path decides (null: never); <c>Extrapolation</c> marks a design modelled as intended, beyond what was posted.
/// </summary>
public sealed record PolicyInfo(string Name, string Summary, IReadOnlyList<PolicyParameter> Parameters, string? FallsBackWhen, bool Extrapolation);

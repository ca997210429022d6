namespace HugeFault;

/// <summary>Marker type for the HugeFault library assembly.</summary>
public static class HugeFaultLibrary
{
    public const string Name = "HugeFault";
}

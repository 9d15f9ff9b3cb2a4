namespace Duplex.Testing;

/// <summary>UTF-8 test sequences as hex (in the spirit of Autobahn's 6.x and Markus Kuhn's stress test).</summary>
public static class Utf8Samples
{
    /// <summary>Valid: boundaries of every length, the BOM, non-characters, mixed scripts.</summary>
    public static readonly string[] Valid =
    [
        "", "41", "7f", "c280", "dfbf", "e0a080", "ed9fbf", "ee8080", "efbfbf", "efbbbf", "efbfbe",
        "f0908080", "f48fbfbf", "f3bfbfbf", "cebae1bdb9cf83cebcceb5",
        "48656c6c6f2dc2b540c39fc3b6c3a4c3bcc3a0c3a12d5554462d38212121",
    ];

    /// <summary>Invalid: stray continuations, overlong forms, surrogates, above U+10FFFF, truncations, bad lead bytes.</summary>
    public static readonly string[] Invalid =
    [
        "80", "bf", "80bf", "c0", "c1bf", "c080", "c0af", "e08080", "e09fbf", "f0808080", "f08fbfbf", "f8888080af", "fc8480808080",
        "eda080", "edbfbf", "eda080edb080", "f4908080", "f5808080", "ff", "fe", "c2", "e282", "f0908d", "c241", "e28241",
        "cebae1bdb9cf83cebcceb5eda080656469746564", "f4bf", "e0", "41ed", "41ed9f",
    ];
}

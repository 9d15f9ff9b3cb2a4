namespace Duplex.Protocol;

/// <summary>Which end of the connection this is: it decides who masks (§5.3).</summary>
public enum Role
{
    /// <summary>The end that opened the connection: it masks what it sends.</summary>
    Client,
    /// <summary>The end that accepted the connection: it never masks, and ends TCP first after a close.</summary>
    Server,
}

namespace Duplex.Protocol;

/// <summary>Which end of the connection this is: it decides who masks (§5.3).</summary>
public enum Role
{
    Client,
    Server,
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Duplex.Testing;

/// <summary>Ports on 127.0.0.1 for servers a test starts as processes.</summary>
public static class LocalPorts
{
    /// <summary>A port that was free a moment ago.</summary>
    public static int Free()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>A port below 55536 that is free, and so is the port <paramref name="offset"/> above it (a Redis Cluster node's bus).</summary>
    public static int FreeWithPartner(int offset)
    {
        for (int attempt = 0; attempt < 200; attempt++)
        {
            int port = Random.Shared.Next(20_000, 55_536 - offset);
            if (IsFree(port) && IsFree(port + offset))
                return port;
        }
        throw new InvalidOperationException("no free port pair found");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var probe = new TcpListener(IPAddress.Loopback, port);
            probe.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Waits (at most 20 s, or until the process exits) until something accepts connections on the port.</summary>
    public static async Task WaitAsync(int port, Process? process = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && process is not { HasExited: true })
            {
                await Task.Delay(50);
            }
        }
    }
}

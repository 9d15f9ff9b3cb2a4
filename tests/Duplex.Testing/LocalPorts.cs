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
